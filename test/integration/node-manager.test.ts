// The node manager over real mutual TLS on port 0 with a real LevelDB: the process driver (no root
// needed), every refusal with its gRPC code, credentials rooted at the owner and at the slice
// authority, owner policy, lifecycle, idempotency, the reaper working with no call, 50 concurrent
// creates on the simulated driver, and heartbeats pushed to a recording management authority.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueRoot, signRevocationList, thumbprintOf, toPublicJwk, type RevocationEntry } from '../../services/core/credentials/index.js';
import { FailedPreconditionError } from '../../services/core/errors.js';
import { silentLogger } from '../../services/core/log.js';
import { defineService } from '../../services/core/rpc/adapter.js';
import { startServer, type RunningServer } from '../../services/core/rpc/server.js';
import { AllocationState, OperationalState, SliverIsolation } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService, type HeartbeatRequest } from '../../services/generated/fedlab/v1/management_authority.js';
import { SliverAction } from '../../services/generated/fedlab/v1/node_manager.js';
import {
  collectExec,
  createRequest,
  createSliver,
  MA_URN,
  ownerChainWith,
  parties,
  SA_URN,
  sliceChain,
  SP_URN,
  startNodeManager,
  tlsOf,
  withSaJwk,
  type NmHarness,
} from '../helpers/node-manager.js';
import { waitFor } from '../helpers/servers.js';

/** Runs a call that must fail; returns its gRPC error. */
async function refused(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded but should have been refused');
}

function ruleOf(err: ServiceError): string | undefined {
  return err.metadata?.get('fedlab-rule')[0]?.toString();
}

describe('node manager over mTLS (process driver)', () => {
  let h: NmHarness;
  const slice = 'urn:fedlab:plc.test:slice:s1';

  beforeAll(async () => {
    h = await startNodeManager({
      driver: 'process',
      config: {
        policy: { providers: [SP_URN, 'urn:fedlab:plc.test:sp:beta'], slice_authority_domains: ['plc.test'], max_lifetime_s: 14 * 86_400 },
        exec: { max_output_bytes: 64 * 1024, default_timeout_ms: 10_000, max_timeout_ms: 60_000 },
      },
    });
  });
  afterAll(async () => {
    await h?.destroy();
  });

  const ma = () => h.client();
  const owner = () => ({ chain: h.parties.ownerChain });
  const sliverDirs = () => (existsSync(join(h.dataDir, 'slivers')) ? readdirSync(join(h.dataDir, 'slivers')).sort() : []);

  it('describes the node honestly: process isolation, configured capacity, version', async () => {
    const { node, startedAt } = await ma().getNodeInfo({}, owner());
    expect(node).toMatchObject({
      urn: 'urn:fedlab:plc.test:node:n1',
      ownerUrn: 'urn:fedlab:plc.test:owner:alice',
      aggregateUrn: MA_URN,
      isolation: SliverIsolation.SLIVER_ISOLATION_PROCESS,
      capacity: { cpuMillis: 4000, memMb: 4096, diskMb: 8192, pids: 4096 },
      version: '0.1.0',
    });
    expect(startedAt).toBeInstanceOf(Date);
  });

  it('creates a READY sliver labelled PROCESS, runs commands in its work dir, and the slice credential reads it', async () => {
    const s = await createSliver(h, 'p1');
    expect(s).toMatchObject({
      operationalState: OperationalState.OPERATIONAL_STATE_READY,
      allocationState: AllocationState.ALLOCATION_STATE_PROVISIONED,
      isolation: SliverIsolation.SLIVER_ISOLATION_PROCESS,
      nodeUrn: 'urn:fedlab:plc.test:node:n1',
      sliceAuthorityUrn: SA_URN,
      workDir: join(h.dataDir, 'slivers', 'p1'),
    });
    const out = await collectExec(
      ma().exec(
        {
          sliverUrn: s.urn,
          argv: ['sh', '-c', 'pwd; cat; echo err >&2; exit 3'],
          env: { GREETING: 'hi' },
          stdin: Buffer.from('in\n'),
          timeoutMs: 0,
        },
        owner(),
      ),
    );
    expect(out).toMatchObject({
      stdout: `${s.workDir}\nin\n`,
      stderr: 'err\n',
      exit: { status: { $case: 'code', code: 3 }, timedOut: false },
    });

    const sp = h.client(h.parties.sp);
    const chain = await sliceChain(slice);
    expect((await sp.getSliver({ sliverUrn: s.urn }, { chain })).sliver?.urn).toBe(s.urn);
    const env = await collectExec(
      sp.exec(
        { sliverUrn: s.urn, argv: ['sh', '-c', 'echo $GREETING $FEDLAB_SLICE_URN'], env: { GREETING: 'hello' }, timeoutMs: 0 },
        { chain },
      ),
    );
    expect(env.stdout).toBe(`hello ${slice}\n`);
    const listed = await sp.listSlivers({ pageSize: 0, pageToken: '', sliceUrn: slice }, { chain });
    expect(listed.slivers.map((x) => x.urn)).toContain(s.urn);
  });

  it('refuses callers without the right chain: UNAUTHENTICATED or PERMISSION_DENIED naming the rule', async () => {
    const req = await withSaJwk(createRequest('auth1'));
    const none = await refused(ma().createSliver(req));
    expect(none.code).toBe(Status.UNAUTHENTICATED);
    expect(ruleOf(none)).toBe('missing');

    // The owner → MA chain shown by someone who does not hold it.
    const stolen = await refused(h.client(h.parties.sp).createSliver(req, owner()));
    expect(stolen.code).toBe(Status.UNAUTHENTICATED);
    expect(ruleOf(stolen)).toMatch(/^holder-/);

    // A valid owner chain without sliver.create.
    const readOnly = await ownerChainWith({ privileges: ['node.read', 'sliver.read'] });
    const denied = await refused(ma().createSliver(req, { chain: readOnly }));
    expect(denied.code).toBe(Status.PERMISSION_DENIED);
    expect(ruleOf(denied)).toBe('grant-privilege');

    // A slice credential cannot do node-level calls: its root is not the node's owner.
    const sp = h.client(h.parties.sp);
    const chain = await sliceChain(slice);
    // DeleteSliver takes only owner-rooted chains: a slice chain is PERMISSION_DENIED, whether or not the sliver exists.
    const deleted = await refused(sp.deleteSliver({ sliverUrn: req.sliverUrn }, { chain }));
    expect(deleted.code).toBe(Status.PERMISSION_DENIED);
    expect(ruleOf(deleted)).toBe('owner-rooted');
    for (const call of [
      sp.createSliver(req, { chain }),
      sp.getNodeInfo({}, { chain }),
      sp.listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, { chain }),
    ]) {
      const err = await refused(call);
      expect(err.code).toBe(Status.UNAUTHENTICATED);
      expect(ruleOf(err)).toBe('trust-anchor');
    }
    expect(sliverDirs()).not.toContain('auth1');
  });

  it('a slice credential reaches only its own slice, only with its privileges, only from the key CreateSliver named', async () => {
    const mine = await createSliver(h, 'q1', { sliceUrn: 'urn:fedlab:plc.test:slice:q' });
    const other = await createSliver(h, 'q2', { sliceUrn: 'urn:fedlab:plc.test:slice:other' });
    const sp = h.client(h.parties.sp);
    const chain = await sliceChain('urn:fedlab:plc.test:slice:q');
    await collectExec(sp.exec({ sliverUrn: mine.urn, argv: ['true'], env: {}, timeoutMs: 0 }, { chain }));
    const cross = await refused(collectExec(sp.exec({ sliverUrn: other.urn, argv: ['true'], env: {}, timeoutMs: 0 }, { chain })));
    expect(cross.code).toBe(Status.UNAUTHENTICATED);

    const readOnly = await sliceChain('urn:fedlab:plc.test:slice:q', { privileges: ['sliver.read'] });
    const noExec = await refused(collectExec(sp.exec({ sliverUrn: mine.urn, argv: ['true'], env: {}, timeoutMs: 0 }, { chain: readOnly })));
    expect(noExec.code).toBe(Status.PERMISSION_DENIED);
    expect(ruleOf(noExec)).toBe('grant-privilege');

    // Same slice authority URN, another key: not the trust root CreateSliver recorded.
    const p = await parties();
    const impostor = await p.pki.issue('urn:fedlab:plc.test:authority:sa');
    const forged = await issueRoot({
      key: impostor.privateKey,
      issuer: SA_URN,
      subject: SP_URN,
      subjectKey: p.sp.jwk as Record<string, unknown>,
      targets: ['urn:fedlab:plc.test:slice:q'],
      privileges: ['sliver.exec'],
    });
    const err = await refused(
      collectExec(sp.exec({ sliverUrn: mine.urn, argv: ['true'], env: {}, timeoutMs: 0 }, { chain: forged.chain })),
    );
    expect(err.code).toBe(Status.UNAUTHENTICATED);
    expect(ruleOf(err)).toBe('trust-anchor');

    // A member the provider delegated to.
    const member = await p.pki.issue('urn:fedlab:plc.test:user:bob');
    const memberChain = await sliceChain('urn:fedlab:plc.test:slice:q', { member });
    const out = await collectExec(
      h.client(member).exec({ sliverUrn: mine.urn, argv: ['echo', 'member'], env: {}, timeoutMs: 0 }, { chain: memberChain }),
    );
    expect(out.stdout).toBe('member\n');

    // Deleting takes the owner's chain: a valid slice chain is refused as not allowed (not as unknown), and nothing goes.
    const del = await refused(h.client(member).deleteSliver({ sliverUrn: mine.urn }, { chain: memberChain }));
    expect(del.code).toBe(Status.PERMISSION_DENIED);
    expect(ruleOf(del)).toBe('owner-rooted');
    expect(del.message).toMatch(/DeleteSlice/);
    expect(h.nm.slivers.get(mine.urn)).toBeDefined();
  });

  it("takes a slice authority's signed revocation list only for its slices here, and then refuses what it revoked", async () => {
    const mine = await createSliver(h, 'rv1', { sliceUrn: 'urn:fedlab:plc.test:slice:rv' });
    const p = await parties();
    const chain = await sliceChain('urn:fedlab:plc.test:slice:rv');
    const sp = h.client(p.sp);
    await sp.getSliver({ sliverUrn: mine.urn }, { chain });
    const jti = (JSON.parse(Buffer.from((chain[0] as string).split('.')[1] as string, 'base64url').toString()) as { jti: string }).jti;
    const saList = (entries: RevocationEntry[], version: number): string =>
      signRevocationList(
        { v: 1, iss: SA_URN, jwk: toPublicJwk(p.sa.privateKey), kid: thumbprintOf(toPublicJwk(p.sa.privateKey)), version, entries },
        p.sa.privateKey,
      );
    const revoked = saList([{ jti, reason: 'gone', time: Math.floor(Date.now() / 1000) }], 1);
    const stranger = await p.pki.issue('urn:fedlab:plc.test:authority:other');
    const strangerList = signRevocationList(
      { v: 1, jwk: toPublicJwk(stranger.privateKey), kid: thumbprintOf(toPublicJwk(stranger.privateKey)), version: 1, entries: [] },
      stranger.privateKey,
    );

    // Only the node's owner chain (the MA relays); a slice chain may not install lists.
    const bySp = await refused(sp.updateRevocations({ signedLists: [revoked] }, { chain }));
    expect(bySp.code).toBe(Status.UNAUTHENTICATED);
    // Not a signed list, or a list altered after signing: INVALID_ARGUMENT, nothing installed.
    const tampered = revoked.replace(
      /\.([^.]+)\./,
      (_m, p64: string) =>
        `.${Buffer.from(Buffer.from(p64, 'base64url').toString().replace('"version":1', '"version":2')).toString('base64url')}.`,
    );
    for (const bad of ['not a jws', tampered]) {
      const err = await refused(ma().updateRevocations({ signedLists: [revoked, bad] }, { chain: h.parties.ownerChain as string[] }));
      expect(err.code).toBe(Status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/signed_lists\[1\]/);
    }
    await sp.getSliver({ sliverUrn: mine.urn }, { chain });
    // A list of a key that roots no slice here is skipped; the slice authority's is installed once.
    const res = await ma().updateRevocations(
      { signedLists: [strangerList, revoked, revoked] },
      { chain: h.parties.ownerChain as string[] },
    );
    expect(res).toEqual({ installed: 1, current: 1, skipped: 1 });
    const err = await refused(sp.getSliver({ sliverUrn: mine.urn }, { chain }));
    expect(err.code).toBe(Status.UNAUTHENTICATED);
    expect(ruleOf(err)).toBe('revoked');
    // An older version changes nothing.
    expect(await ma().updateRevocations({ signedLists: [saList([], 0)] }, { chain: h.parties.ownerChain as string[] })).toEqual({
      installed: 0,
      current: 1,
      skipped: 0,
    });
  });

  it('refuses bad input with INVALID_ARGUMENT and leaves nothing on disk or in the store', async () => {
    const before = { dirs: sliverDirs(), count: h.nm.slivers.count, committed: h.nm.slivers.committed };
    const bad: [string, Parameters<typeof createRequest>[1]][] = [
      ['malformed sliver URN', { sliverUrn: 'urn:fedlab:plc.test:sliver' }],
      ['path separator', { sliverUrn: 'urn:fedlab:plc.test:sliver:a/../../etc' }],
      ['shell metacharacters', { sliverUrn: 'urn:fedlab:plc.test:sliver:a;rm -rf /' }],
      ['command substitution', { sliverUrn: 'urn:fedlab:plc.test:sliver:$(id)' }],
      ['upper case', { sliverUrn: 'urn:fedlab:plc.test:sliver:ABC' }],
      ['other domain', { sliverUrn: 'urn:fedlab:evil.test:sliver:x' }],
      ['wrong kind', { sliverUrn: 'urn:fedlab:plc.test:slice:x' }],
      ['bad slice URN', { sliceUrn: 'slice-1' }],
      ['bad provider', { providerUrn: 'urn:fedlab:plc.test:user:u' }],
      ['bad request id', { requestId: 'has space' }],
      // A client that sends -1 for a uint32 puts 4294967295 on the wire.
      ['negative cpu', { resources: { cpuMillis: 4294967295, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 } }],
      ['absurd memory', { resources: { cpuMillis: 100, memMb: 2 ** 50, diskMb: 64, pids: 64, bandwidthKbps: 0 } }],
      ['too little memory', { resources: { cpuMillis: 100, memMb: 1, diskMb: 64, pids: 64, bandwidthKbps: 0 } }],
      ['absurd pids', { resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 1e9, bandwidthKbps: 0 } }],
      ['past expiry', { expiresAt: new Date(Date.now() - 1000) }],
      ['jwk not JSON', { sliceAuthorityJwk: '{nope' }],
      ['private jwk', { sliceAuthorityJwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: 'a', d: 'b' }) }],
      ['rsa jwk', { sliceAuthorityJwk: JSON.stringify({ kty: 'RSA', n: 'a', e: 'AQAB' }) }],
      ['unallocated target', { allocationState: AllocationState.ALLOCATION_STATE_UNALLOCATED }],
    ];
    for (const [what, o] of bad) {
      const err = await refused(
        ma().createSliver(await withSaJwk(createRequest(`bad${Math.random().toString(36).slice(2, 6)}`, o)), owner()),
      );
      expect(err.code, what).toBe(Status.INVALID_ARGUMENT);
    }
    expect(sliverDirs()).toEqual(before.dirs);
    expect(h.nm.slivers.count).toBe(before.count);
    expect(h.nm.slivers.committed).toEqual(before.committed);
  });

  it('capacity: RESOURCE_EXHAUSTED saying what is left', async () => {
    const err = await refused(
      createSliver(h, 'huge', { resources: { cpuMillis: 100, memMb: 5000, diskMb: 64, pids: 64, bandwidthKbps: 0 } }),
    );
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/mem_mb: asked 5000, \d+ of 4096 left/);
  });

  it('owner policy: providers, slice authority domains, lifetime and the chain lim are PERMISSION_DENIED naming the rule', async () => {
    const provider = await refused(createSliver(h, 'pol1', { providerUrn: 'urn:fedlab:plc.test:sp:gamma' }));
    expect(provider.code).toBe(Status.PERMISSION_DENIED);
    expect(provider.details).toMatch(/owner policy providers/);

    const sa = await refused(createSliver(h, 'pol2', { sliceAuthorityUrn: 'urn:fedlab:other.test:authority:sa' }));
    expect(sa.code).toBe(Status.PERMISSION_DENIED);
    expect(sa.details).toMatch(/slice_authority_domains/);

    const late = await refused(createSliver(h, 'pol3', { expiresAt: new Date(Date.now() + 30 * 86_400_000) }));
    expect(late.code).toBe(Status.PERMISSION_DENIED);
    expect(late.details).toMatch(/max_lifetime_s/);

    const short = await ownerChainWith({ limits: { ttl_s: 3600, slivers: 1 } });
    const ttl = await refused(
      createSliver(h, 'pol4', { expiresAt: new Date(Date.now() + 7200_000), sliceUrn: 'urn:fedlab:plc.test:slice:lim' }, short),
    );
    expect(ttl.details).toMatch(/lim.ttl_s/);
    // Unset expiry: the default lifetime, capped by the chain's ttl_s.
    const capped = await createSliver(h, 'pol5', { sliceUrn: 'urn:fedlab:plc.test:slice:lim' }, short);
    expect(capped.expiresAt!.getTime() - capped.createdAt!.getTime()).toBeLessThanOrEqual(3600_000);
    const perSlice = await refused(createSliver(h, 'pol6', { sliceUrn: 'urn:fedlab:plc.test:slice:lim' }, short));
    expect(perSlice.code).toBe(Status.PERMISSION_DENIED);
    expect(perSlice.details).toMatch(/owner policy per_slice: .*slivers/);
  });

  it('is idempotent on request_id; the same id with other arguments is ALREADY_EXISTS', async () => {
    const req = await withSaJwk(createRequest('idem'));
    const a = await ma().createSliver(req, owner());
    const b = await ma().createSliver(req, owner());
    expect(b.sliver?.urn).toBe(a.sliver?.urn);
    expect(b.sliver?.createdAt).toEqual(a.sliver?.createdAt);
    const err = await refused(ma().createSliver({ ...req, clientId: 'different' }, owner()));
    expect(err.code).toBe(Status.ALREADY_EXISTS);
  });

  it('Exec refusals: unknown sliver NOT_FOUND, not ready FAILED_PRECONDITION, oversized output RESOURCE_EXHAUSTED, bad argv/env INVALID_ARGUMENT; timeouts kill', async () => {
    const unknown = await refused(
      collectExec(ma().exec({ sliverUrn: 'urn:fedlab:plc.test:sliver:nosuch', argv: ['true'], env: {}, timeoutMs: 0 }, owner())),
    );
    expect(unknown.code).toBe(Status.NOT_FOUND);

    const s = await createSliver(h, 'ex1');
    const big = await refused(
      collectExec(ma().exec({ sliverUrn: s.urn, argv: ['sh', '-c', 'yes | head -c 1000000'], env: {}, timeoutMs: 0 }, owner())),
    );
    expect(big.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(big.details).toMatch(/more than 65536 bytes of output/);

    for (const [argv, env] of [
      [[], {}],
      [['a\0b'], {}],
      [['true'], { FEDLAB_SLIVER: 'x' }],
      [['true'], { 'BAD-NAME': 'x' }],
    ] as [string[], Record<string, string>][]) {
      const err = await refused(collectExec(ma().exec({ sliverUrn: s.urn, argv, env, timeoutMs: 0 }, owner())));
      expect(err.code, JSON.stringify(argv)).toBe(Status.INVALID_ARGUMENT);
    }
    const tooLong = await refused(collectExec(ma().exec({ sliverUrn: s.urn, argv: ['true'], env: {}, timeoutMs: 999_999_999 }, owner())));
    expect(tooLong.code).toBe(Status.INVALID_ARGUMENT);

    const slow = await collectExec(ma().exec({ sliverUrn: s.urn, argv: ['sleep', '30'], env: {}, timeoutMs: 200 }, owner()));
    expect(slow.exit).toMatchObject({ status: { $case: 'signal', signal: 'SIGKILL' }, timedOut: true });

    await ma().controlSliver({ sliverUrn: s.urn, action: SliverAction.SLIVER_ACTION_STOP }, owner());
    const stopped = await refused(collectExec(ma().exec({ sliverUrn: s.urn, argv: ['true'], env: {}, timeoutMs: 0 }, owner())));
    expect(stopped.code).toBe(Status.FAILED_PRECONDITION);
  });

  it('lifecycle: stop, start, restart, renew within the rules, list pages, delete twice', async () => {
    const s = await createSliver(h, 'life', { start: false });
    expect(s.operationalState).toBe(OperationalState.OPERATIONAL_STATE_NOTREADY);
    const started = await ma().controlSliver({ sliverUrn: s.urn, action: SliverAction.SLIVER_ACTION_START }, owner());
    expect(started.sliver?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_READY);
    const restarted = await ma().controlSliver({ sliverUrn: s.urn, action: SliverAction.SLIVER_ACTION_RESTART }, owner());
    expect(restarted.sliver?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_READY);
    const stopped = await ma().controlSliver({ sliverUrn: s.urn, action: SliverAction.SLIVER_ACTION_STOP }, owner());
    expect(stopped.sliver?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_STOPPED);
    const noAction = await refused(ma().controlSliver({ sliverUrn: s.urn, action: SliverAction.SLIVER_ACTION_UNSPECIFIED }, owner()));
    expect(noAction.code).toBe(Status.INVALID_ARGUMENT);

    const later = new Date(Date.now() + 10 * 86_400_000);
    const renewed = await ma().renewSliver({ sliverUrn: s.urn, expiresAt: later }, owner());
    expect(renewed.sliver?.expiresAt).toEqual(later);
    const tooLate = await refused(ma().renewSliver({ sliverUrn: s.urn, expiresAt: new Date(Date.now() + 20 * 86_400_000) }, owner()));
    expect(tooLate.code).toBe(Status.PERMISSION_DENIED);
    // The slice's own credential renews only within its own expiry.
    const brief = await sliceChain(slice, { ttlSeconds: 3600 });
    const sp = h.client(h.parties.sp);
    const spLate = await refused(sp.renewSliver({ sliverUrn: s.urn, expiresAt: new Date(Date.now() + 2 * 3600_000) }, { chain: brief }));
    expect(spLate.code).toBe(Status.PERMISSION_DENIED);
    expect((await sp.renewSliver({ sliverUrn: s.urn, expiresAt: new Date(Date.now() + 1800_000) }, { chain: brief })).sliver?.urn).toBe(
      s.urn,
    );

    const page1 = await ma().listSlivers({ pageSize: 2, pageToken: '', sliceUrn: '' }, owner());
    expect(page1.slivers).toHaveLength(2);
    expect(page1.nextPageToken).not.toBe('');
    const page2 = await ma().listSlivers({ pageSize: 2, pageToken: page1.nextPageToken, sliceUrn: '' }, owner());
    expect(page2.slivers[0]!.urn > page1.slivers[1]!.urn).toBe(true);
    const badToken = await refused(ma().listSlivers({ pageSize: 2, pageToken: 'garbage', sliceUrn: '' }, owner()));
    expect(badToken.code).toBe(Status.INVALID_ARGUMENT);

    const del = await ma().deleteSliver({ sliverUrn: s.urn }, owner());
    expect(del).toMatchObject({ existed: true, sliver: { allocationState: AllocationState.ALLOCATION_STATE_UNALLOCATED } });
    expect(await ma().deleteSliver({ sliverUrn: s.urn }, owner())).toMatchObject({ existed: false });
    expect(sliverDirs()).not.toContain('life');
    const gone = await refused(ma().getSliver({ sliverUrn: s.urn }, owner()));
    expect(gone.code).toBe(Status.NOT_FOUND);
  });

  it('reaps an expired sliver with no call: its process, its directory and its capacity go', async () => {
    const s = await createSliver(h, 'short', { expiresAt: new Date(Date.now() + 1500) });
    const committed = h.nm.slivers.committed.slivers;
    expect(sliverDirs()).toContain('short');
    // Nothing calls the node manager: it notices on its own.
    await waitFor(() => h.nm.slivers.get(s.urn) === undefined, 10_000, 'the reaper');
    expect(sliverDirs()).not.toContain('short');
    expect(h.nm.slivers.committed.slivers).toBe(committed - 1);
    expect((await h.nm.slivers.driver.listArtifacts()).includes('short')).toBe(false);
  });
});

describe('admission under load (simulated driver)', () => {
  let h: NmHarness;
  beforeAll(async () => {
    h = await startNodeManager({
      driver: 'simulated',
      config: { capacity: { cpu_millis: 1000, mem_mb: 100_000, disk_mb: 100_000, pids: 100_000, slivers: 1000 } },
    });
  });
  afterAll(async () => {
    await h?.destroy();
  });

  it('50 concurrent CreateSliver calls never over-commit; every refusal is RESOURCE_EXHAUSTED; slivers are labelled SIMULATED', async () => {
    const reqs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        withSaJwk(
          createRequest(`sim${i}`, {
            sliceUrn: `urn:fedlab:plc.test:slice:c${i}`,
            resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
          }),
        ),
      ),
    );
    const results = await Promise.allSettled(reqs.map((r) => h.client().createSliver(r, { chain: h.parties.ownerChain })));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const no = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(10);
    expect(no.every((r) => (r.reason as ServiceError).code === Status.RESOURCE_EXHAUSTED)).toBe(true);
    for (const r of ok)
      expect((r as PromiseFulfilledResult<{ sliver?: { isolation: number } }>).value.sliver?.isolation).toBe(
        SliverIsolation.SLIVER_ISOLATION_SIMULATED,
      );
    const { node } = await h.client().getNodeInfo({}, { chain: h.parties.ownerChain });
    expect(node?.allocated?.cpuMillis).toBe(1000);
    expect(node?.sliverCount).toBe(10);
    expect(node?.isolation).toBe(SliverIsolation.SLIVER_ISOLATION_SIMULATED);
    const noExec = await refused(
      collectExec(
        h.client().exec({ sliverUrn: reqs[0]!.sliverUrn, argv: ['true'], env: {}, timeoutMs: 0 }, { chain: h.parties.ownerChain }),
      ),
    );
    expect([Status.FAILED_PRECONDITION, Status.NOT_FOUND]).toContain(noExec.code);
  });
});

describe('heartbeats', () => {
  let ma: RunningServer;
  let h: NmHarness | undefined;
  const received: { req: HeartbeatRequest; caller: string }[] = [];

  beforeAll(async () => {
    const p = await parties();
    // The unary methods only: without HeartbeatStream this is an older authority, and beats go as Heartbeat calls.
    const unaryMethods = Object.fromEntries(Object.entries(ManagementAuthorityService).filter(([, d]) => !d.requestStream));
    const handlers: Record<string, (...args: never[]) => Promise<unknown>> = Object.fromEntries(
      Object.keys(unaryMethods).map((k) => [
        k,
        async () => {
          throw new FailedPreconditionError('not part of this test');
        },
      ]),
    );
    handlers.heartbeat = async (req: HeartbeatRequest, ctx: { peer: { urn: string } }) => {
      received.push({ req, caller: ctx.peer.urn });
      return { serverTime: new Date(), heartbeatIntervalS: 0, revocationVersion: 0 };
    };
    ma = await startServer({ port: 0, tls: tlsOf(p, p.ma), log: silentLogger(), shutdownGraceMs: 1000 }, [
      defineService(unaryMethods as typeof ManagementAuthorityService, handlers as never),
    ]);
  });
  afterAll(async () => {
    await h?.destroy();
    await ma?.stop();
  });

  it('pushes capacity, allocation, usage, sliver count and version to the configured authority, which sees the node by its certificate', async () => {
    h = await startNodeManager({
      driver: 'simulated',
      config: {
        management_authority: { urn: MA_URN, address: `127.0.0.1:${ma.port}` },
        heartbeat_interval_ms: 100,
        endpoint: 'n1.plc.test:7000',
      },
    });
    await createSliver(h, 'hb1');
    await waitFor(() => received.some((r) => r.req.sliverCount === 1) && received.length >= 3, 10_000, 'three heartbeats');
    const seqs = received.map((r) => r.req.sequence);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const last = received[received.length - 1]!;
    expect(last.caller).toBe('urn:fedlab:plc.test:node:n1');
    expect(last.req).toMatchObject({
      nodeUrn: 'urn:fedlab:plc.test:node:n1',
      capacity: { cpuMillis: 4000, memMb: 4096 },
      allocated: { cpuMillis: 100, memMb: 64 },
      sliverCount: 1,
      version: '0.1.0',
      endpoint: 'n1.plc.test:7000',
    });
    expect(last.req.usage).toBeDefined();
    expect(last.req.sentAt).toBeInstanceOf(Date);
    // After the node manager stops, no more beats.
    await h.stop();
    const n = received.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(received.length).toBe(n);
  });
});
