// The MA's channels to its node managers, over real mutual TLS: a node manager that was down while the MA
// called it and then came back on the same address is called again at once, not after the channel's
// reconnect backoff (which refuses every call at once for up to two minutes): a channel that could not
// connect is closed after the call that found it so. And a node that stays unreachable costs a connect
// per call, not one every backoff for as long as the MA runs.
import { createServer, type AddressInfo } from 'node:net';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineService } from '../../services/core/rpc/adapter.js';
import { startServer, type RunningServer, type TlsMaterial } from '../../services/core/rpc/server.js';
import { ManualClock } from '../../services/core/clock.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { NodeClients } from '../../services/management-authority/node-clients.js';
import type { LiveNode, NodeRegistry } from '../../services/management-authority/node-registry.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { capturingLogger } from '../helpers/servers.js';

const NODE = 'urn:fedlab:plc.test:node:n1';

let pki: TestPki;
let nodeTls: TlsMaterial;
let maTls: TlsMaterial;
const running: RunningServer[] = [];

beforeAll(async () => {
  pki = await makeTestPki('plc.test');
  const node = await pki.issue(NODE, { ip: ['127.0.0.1'] });
  const ma = await pki.issue('urn:fedlab:plc.test:authority:ma');
  nodeTls = { caCerts: pki.caPem, cert: node.certPem, key: node.keyPem };
  maTls = { caCerts: pki.caPem, cert: ma.certPem, key: ma.keyPem };
});

afterAll(async () => {
  for (const s of running) await s.stop();
});

/** A node manager that answers GetNodeInfo only (all this pool needs to show). */
async function startNode(port: number): Promise<RunningServer> {
  const service = defineService(
    { getNodeInfo: NodeManagerService.getNodeInfo },
    { getNodeInfo: () => Promise.resolve({ node: undefined, commitments: undefined }) as never },
  );
  const server = await startServer({ port, tls: nodeTls, log: capturingLogger().log, shutdownGraceMs: 0 }, [service]);
  running.push(server);
  return server;
}

describe('node clients', () => {
  it('calls a node that came back at once, heartbeat or not, although its old channel is in its backoff', async () => {
    const clock = new ManualClock(Date.now());
    let server = await startNode(0);
    const port = server.port;
    const node = { record: { urn: NODE }, endpoint: `127.0.0.1:${port}`, lastHeartbeatAt: clock.now() } as unknown as LiveNode;
    const registry = { get: (urn: string) => (urn === NODE ? node : undefined) } as unknown as NodeRegistry;
    // A backoff far longer than the test, so that only a new channel can serve the call after the restart.
    const channelOptions = { 'grpc.initial_reconnect_backoff_ms': 60_000, 'grpc.max_reconnect_backoff_ms': 60_000 };
    const nodes = new NodeClients({
      channelOptions,
      tls: maTls,
      registry,
      log: capturingLogger().log,
      clock,
      deadlineMs: 2000,
      concurrency: 4,
      maxChannels: 8,
    });
    try {
      const info = (): ReturnType<NodeClients['call']> => nodes.call(NODE, (c, opts) => c.getNodeInfo({}, opts));
      expect((await info()).ok).toBe(true);

      // Down: the channel's connection attempt is refused, and it goes into its reconnect backoff.
      await server.stop();
      const down = await info();
      expect(down.ok).toBe(false);
      expect(down.ok ? 0 : down.code).toBe(Status.UNAVAILABLE);

      // The channel that could not connect was closed with that call (its backoff would refuse calls for a minute).
      expect(nodes.openChannels).toBe(0);

      // Back on the same address, not heard from yet: a new channel serves the call.
      server = await startNode(port);
      const silent = await info();
      expect(silent.ok ? 'ok' : silent.reason).toBe('ok');

      // And after a heartbeat too.
      clock.advance(1);
      node.lastHeartbeatAt = clock.now();
      const back = await info();
      expect(back.ok ? 'ok' : back.reason).toBe('ok');
    } finally {
      nodes.close();
    }
  });

  it('does not keep reconnecting in the background to a node that cannot be reached', async () => {
    // A listener that takes TCP connections and drops them: what a node's address looks like when nothing
    // serves there (every connect counted; a refused port would leave no trace to count).
    let connects = 0;
    const sink = createServer((socket) => {
      connects++;
      socket.destroy();
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const port = (sink.address() as AddressInfo).port;
    const node = { record: { urn: NODE }, endpoint: `127.0.0.1:${port}`, lastHeartbeatAt: Date.now() } as unknown as LiveNode;
    const registry = { get: (urn: string) => (urn === NODE ? node : undefined) } as unknown as NodeRegistry;
    // Short backoffs: a channel left open would reconnect several times a second.
    const channelOptions = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 100 };
    const nodes = new NodeClients({
      channelOptions,
      tls: maTls,
      registry,
      log: capturingLogger().log,
      deadlineMs: 2000,
      concurrency: 4,
      maxChannels: 8,
    });
    try {
      const failed = await nodes.call(NODE, (c, opts) => c.getNodeInfo({}, opts));
      expect(failed.ok ? 0 : failed.code).toBe(Status.UNAVAILABLE);
      expect(nodes.openChannels).toBe(0);
      expect(connects).toBeGreaterThan(0);
      // Connects already under way when the call failed land meanwhile.
      await new Promise((r) => setTimeout(r, 300));
      const after = connects;
      await new Promise((r) => setTimeout(r, 1500));
      // No channel is left to reconnect: nothing more arrived (with one, about 15 connects would have).
      expect(connects).toBe(after);
      // The next call tries again: one more connect, the same answer.
      const again = await nodes.call(NODE, (c, opts) => c.getNodeInfo({}, opts));
      expect(again.ok).toBe(false);
      expect(connects).toBeGreaterThan(after);
    } finally {
      nodes.close();
      await new Promise<void>((r) => sink.close(() => r()));
    }
  });
});
