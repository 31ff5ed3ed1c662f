/**
 * The NodeManager gRPC handlers: wire messages in, domain calls, wire
 * messages out. Everything else lives in {@link NodeManager}.
 */
import { defineService, type ServiceRegistration } from '../core/rpc/adapter.js';
import { NodeManagerService, SliverAction as WireAction, type ExecResponse } from '../generated/fedlab/v1/node_manager.js';
import type { ExecChunk } from './drivers/driver.js';
import type { NodeManager } from './node-manager.js';
import type { SliverAction } from './sliver-manager.js';

const ACTIONS: Partial<Record<WireAction, SliverAction>> = {
  [WireAction.SLIVER_ACTION_START]: 'start',
  [WireAction.SLIVER_ACTION_STOP]: 'stop',
  [WireAction.SLIVER_ACTION_RESTART]: 'restart',
};

/** One output chunk or the exit, as the wire carries it. */
export function toExecResponse(chunk: ExecChunk): ExecResponse {
  switch (chunk.kind) {
    case 'stdout':
      return { chunk: { $case: 'stdout', stdout: chunk.data } };
    case 'stderr':
      return { chunk: { $case: 'stderr', stderr: chunk.data } };
    case 'exit':
      return {
        chunk: {
          $case: 'exit',
          exit: {
            status: chunk.signal ? { $case: 'signal', signal: chunk.signal } : { $case: 'code', code: chunk.code ?? 0 },
            timedOut: chunk.timedOut,
            durationMs: chunk.durationMs,
          },
        },
      };
  }
}

/** The NodeManager service registration over a domain object. */
export function nodeManagerService(nm: NodeManager): ServiceRegistration {
  return defineService(NodeManagerService, {
    async getNodeInfo(_req, ctx) {
      return nm.getNodeInfo(ctx);
    },
    async createSliver(req, ctx) {
      return { sliver: await nm.createSliver(ctx, req) };
    },
    async getSliver(req, ctx) {
      return { sliver: await nm.getSliver(ctx, req.sliverUrn) };
    },
    async listSlivers(req, ctx) {
      return nm.listSlivers(ctx, req);
    },
    async renewSliver(req, ctx) {
      return { sliver: await nm.renewSliver(ctx, req.sliverUrn, req.expiresAt) };
    },
    async controlSliver(req, ctx) {
      return { sliver: await nm.controlSliver(ctx, req.sliverUrn, ACTIONS[req.action]) };
    },
    async deleteSliver(req, ctx) {
      return nm.deleteSliver(ctx, req.sliverUrn);
    },
    async *exec(req, ctx) {
      const output = await nm.exec(ctx, {
        sliverUrn: req.sliverUrn,
        argv: req.argv,
        env: req.env,
        stdin: req.stdin,
        timeoutMs: req.timeoutMs,
      });
      for await (const chunk of output) yield toExecResponse(chunk);
    },
    async getSliverOutput(req, ctx) {
      return { lines: await nm.getSliverOutput(ctx, req.sliverUrn, req.lines) };
    },
    async updateRevocations(req, ctx) {
      return nm.updateRevocations(ctx, req.signedLists);
    },
    async updateSliverUsers(req, ctx) {
      return { sliver: await nm.updateSliverUsers(ctx, req.sliverUrn, req.users) };
    },
  });
}
