// SSH logins from the slice authority down, on a real federation whose node managers serve SSH: a slice
// created through the slice authority with a user's key has, in `Slice.slivers[*].ssh`, the login name
// (the slice's name) and the endpoint of the sliver's node — its address, host key and fingerprint exactly
// as the node publishes them in GetNodeInfo — at CreateSlice and again at GetSlice. With Debian's OpenSSH
// client, `ssh` with the published host key pinned (nothing learned on first use) logs in to each sliver as
// printed there and runs a command inside it; a key that is not the slice's is refused. Real slice
// authority, management authorities of two domains and styles (peered) and node managers with the process
// driver (no root needed), and again with the container driver (runc) where it can run, where the login
// lands inside the sliver's container (its own hostname, not the host's).
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalState, SliceMode, type Sliver } from '../../services/generated/fedlab/v1/common.js';
import { SliceState, type Slice } from '../../services/generated/fedlab/v1/slice_authority.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { disposeParties, type TestNode } from '../helpers/ma-harness.js';
import { canContain, cannotContainReason } from '../helpers/node-manager.js';
import { makeClientKey, opensshCheck, runTool, writeClientConfig, type ClientKey } from '../helpers/openssh.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';
import { newSshKeyPair } from '../../services/core/identity/ssh-keys.js';

if (!opensshCheck.ok) console.log(`skipping the OpenSSH logins: ${opensshCheck.reason}`);
if (!canContain) console.log(`skipping the container driver's part: ${cannotContainReason}`);

const SSH = { ssh: { listen: '127.0.0.1:0' } };
const ALICE = 'urn:fedlab:plc.test:user:alice';

afterAll(async () => {
  await disposeParties();
});

/** The tests on a federation whose node managers use `driver`. */
function sshFederation(driver: 'process' | 'container'): void {
  let fed: Federation;
  let dir: string;
  let alice: ClientKey | undefined;
  let stranger: ClientKey | undefined;
  let slice: Slice;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `fedlab-slice-ssh-${driver}-`));
    if (opensshCheck.ok) {
      alice = makeClientKey(dir, 'alice');
      stranger = makeClientKey(dir, 'stranger');
    }
    fed = await startFederation({
      sites: [
        { domain: 'plc.test', style: 'planetlab', nodes: 1, driver, nodeConfig: SSH },
        { domain: 'pg.test', style: 'protogeni', nodes: 1, driver, nodeConfig: SSH },
      ],
      quotas: { slices: 4, slivers: 4 },
    });
    const aliceKey = alice?.publicLine ?? newSshKeyPair({ comment: 'alice' }).public;
    const res = await fed.saClient().createSlice({
      users: [{ urn: ALICE, sshKeys: [aliceKey] }],
      requestId: 'ssh-fed-1',
      name: 'sshfed',
      description: 'logins from the slice authority down',
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: [siteRequest('plc.test', { count: 1 }), siteRequest('pg.test', { count: 1 })],
      start: true,
      wait: true,
    });
    slice = res.slice as Slice;
  }, 120_000);

  afterAll(async () => {
    await fed?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const nodeOf = (s: Sliver): TestNode => [...fed.nodes.values()].flat().find((n) => n.urn === s.nodeUrn) as TestNode;

  it("names each sliver's login and its node's published endpoint in Slice.slivers, at CreateSlice and GetSlice", async () => {
    expect(slice.state, JSON.stringify(slice.sites)).toBe(SliceState.SLICE_STATE_READY);
    expect(slice.slivers).toHaveLength(2);
    expect(new Set(slice.slivers.map((s) => s.nodeUrn.split(':')[2]))).toEqual(new Set(['plc.test', 'pg.test']));
    const again = (await fed.saClient().getSlice({ sliceUrn: slice.urn })).slice as Slice;
    for (const s of slice.slivers) {
      const info = (
        await nodeOf(s)
          .client()
          .getNodeInfo({}, { chain: nodeOf(s).ownerChain })
      ).node;
      expect(info?.ssh?.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(s.ssh?.username).toBe('sshfed');
      // Exactly what the node publishes: the client can pin the host key without trusting it on first use.
      expect(s.ssh?.endpoint).toEqual(info?.ssh);
      expect(s.ssh?.endpoint?.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      expect(again.slivers.find((x) => x.urn === s.urn)?.ssh).toEqual(s.ssh);
    }
  });

  it.skipIf(!opensshCheck.ok)(
    'logs in to each sliver with ssh as the manifest says, the host key pinned; another key is refused',
    async () => {
      for (const [i, s] of slice.slivers.entries()) {
        expect(s.operationalState).toBe(OperationalState.OPERATIONAL_STATE_READY);
        const endpoint = s.ssh?.endpoint;
        const base = { address: endpoint?.address ?? '', hostKey: endpoint?.hostKey ?? '' };
        const cfg = writeClientConfig(dir, { ...base, identity: (alice as ClientKey).file, alias: `s${i}` });
        const login = `${s.ssh?.username ?? ''}@s${i}`;
        const run = await runTool('ssh', ['-F', cfg, login, 'hostname; echo marker-$((6*7))']);
        expect(run.code, run.stderr).toBe(0);
        const [name, marker] = run.stdout.trim().split('\n');
        expect(marker).toBe('marker-42');
        // In a container the sliver has a hostname of its own.
        if (driver === 'container') expect(name).not.toBe(hostname());
        const other = writeClientConfig(dir, { ...base, identity: (stranger as ClientKey).file, alias: `x${i}` });
        const refused = await runTool('ssh', ['-F', other, `${s.ssh?.username ?? ''}@x${i}`, 'true']);
        expect(refused.code).toBe(255);
        expect(refused.stderr).toMatch(/Permission denied/);
      }
    },
    60_000,
  );
}

describe('SSH logins on a federation whose node managers serve SSH (process driver)', () => sshFederation('process'));
describe.skipIf(!canContain)('SSH logins on a federation whose node managers serve SSH (container driver)', () =>
  sshFederation('container'),
);
