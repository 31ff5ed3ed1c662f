// The MA's channels to its node managers, over real mutual TLS: a node manager that was down while the MA
// called it and then came back on the same address is called again as soon as it heartbeats, not after the
// channel's reconnect backoff (which refuses every call at once for up to two minutes); without a heartbeat
// the failing channel is left to its backoff.
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
  it('calls a node that came back at once after its heartbeat, and leaves a silent one to its backoff', async () => {
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

      // Back on the same address, not heard from yet: the channel still waits out its backoff.
      server = await startNode(port);
      const silent = await info();
      expect(silent.ok).toBe(false);

      // A heartbeat proves it is back: the next call gets a new channel and succeeds.
      clock.advance(1);
      node.lastHeartbeatAt = clock.now();
      const back = await info();
      expect(back.ok ? 'ok' : back.reason).toBe('ok');
    } finally {
      nodes.close();
    }
  });
});
