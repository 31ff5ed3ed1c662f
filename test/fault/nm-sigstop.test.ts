// SIGSTOP of a node manager (`fedlab serve nm`) with a CreateSliver in its socket, then the caller's undo
// (a DeleteSliver) behind it, then SIGCONT: no sliver is left, whichever way it goes. A create whose caller
// gave up (its deadline passed: the client cancelled it) commits nothing; a create still waited for is
// either made (or admitted) and then deleted — the delete answers existed — or superseded by the delete
// (ABORTED): never made after it. The reproduction of the orphan the chaos suite found (docs/architecture.md, "What
// survives what"). Simulated driver: the fence is the store's.
import { status as Status } from '@grpc/grpc-js';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { sleep } from '../../services/core/timing.js';
import { NodeManagerService } from '../../services/generated/fedlab/v1/node_manager.js';
import { exited, startCli } from '../helpers/cli.js';
import { createRequest, NODE_URN, parties, tempDir, tlsOf, withSaJwk, writeNmConfig } from '../helpers/node-manager.js';

let root = '';
let child: ChildProcess | undefined;
let address = '';

/** A client whose connection is up (as an MA's is): calls made while the node is stopped queue in its socket in order. */
const client = async (deadlineMs: number): Promise<PromiseClient<typeof NodeManagerService>> => {
  const p = await parties();
  const c = createClient(NodeManagerService, { address, tls: tlsOf(p, p.ma), serverUrn: NODE_URN, deadlineMs });
  await c.listSlivers({ pageSize: 1, pageToken: '', sliceUrn: '' }, { chain: p.ownerChain });
  return c;
};

async function listed(): Promise<string[]> {
  const c = await client(10_000);
  try {
    return (await c.listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, { chain: (await parties()).ownerChain })).slivers.map(
      (s) => s.urn,
    );
  } finally {
    c.close();
  }
}

/** Stops the node manager, runs `during` (calls that queue in its socket), and continues it `forMs` later. */
async function stopped<T>(forMs: number, during: () => T): Promise<T> {
  const pid = child?.pid as number;
  process.kill(pid, 'SIGSTOP');
  try {
    const result = during();
    await sleep(forMs);
    return result;
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

beforeAll(async () => {
  root = tempDir('fedlab-nm-sigstop-');
  const file = await writeNmConfig(join(root, 'data'), { driver: 'simulated', config: { log_level: 'info' } });
  const started = await startCli(['serve', 'nm', '--config', file], (l) => l.msg === 'listening', { timeoutMs: 60_000 });
  child = started.child;
  address = started.line.address as string;
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid as number, 'SIGCONT');
    child.kill('SIGTERM');
    await exited(child);
  }
  rmSync(root, { recursive: true, force: true });
});

describe('SIGSTOP of a node manager with a create and its undo queued', () => {
  it('a create its caller gave up on is not made after SIGCONT', async () => {
    const p = await parties();
    const req = await withSaJwk(createRequest('gave-up', { sliceUrn: 'urn:fedlab:plc.test:slice:gave-up' }));
    const impatient = await client(800);
    const patient = await client(30_000);
    try {
      const { create, del } = await stopped(2500, () => {
        const create = impatient.createSliver(req, { chain: p.ownerChain }).then(
          () => 'made',
          (e: { code?: number }) => e.code,
        );
        // The caller's undo goes out once it has given up, as an MA's does.
        const del = create.then(() => patient.deleteSliver({ sliverUrn: req.sliverUrn }, { chain: p.ownerChain }));
        return { create, del };
      });
      expect(await create).toBe(Status.DEADLINE_EXCEEDED);
      expect((await del).existed).toBe(false);
      await sleep(500);
      expect(await listed()).not.toContain(req.sliverUrn);
    } finally {
      impatient.close();
      patient.close();
    }
  }, 30_000);

  it('a create still waited for is made and then deleted, or superseded by the delete: never made after it', async () => {
    const p = await parties();
    const req = await withSaJwk(createRequest('raced', { sliceUrn: 'urn:fedlab:plc.test:slice:raced' }));
    const c = await client(30_000);
    try {
      const { create, del } = await stopped(1500, () => {
        const create = c.createSliver(req, { chain: p.ownerChain }).then(
          () => 'made' as const,
          (e: { code?: number; details?: string }) => e,
        );
        const del = c.deleteSliver({ sliverUrn: req.sliverUrn }, { chain: p.ownerChain });
        return { create, del };
      });
      const made = await create;
      const deleted = await del;
      if (made === 'made') expect(deleted.existed).toBe(true);
      else if (made.code === Status.FAILED_PRECONDITION) {
        // Admitted while the delete looked for it, and deleted before it was provisioned.
        expect(made.details).toMatch(/was removed before it could be provisioned/);
        expect(deleted.existed).toBe(true);
      } else {
        expect(made.code, made.details).toBe(Status.ABORTED);
        expect(made.details).toMatch(/superseded by a delete/);
        expect(deleted.existed).toBe(false);
      }
      expect(await listed()).not.toContain(req.sliverUrn);
    } finally {
      c.close();
    }
  }, 30_000);
});
