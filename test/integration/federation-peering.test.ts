// Federation peering between two domains with their own CAs, over real mutual-TLS servers:
// refused at TLS before peering, accepted after `fedlab federation peer add` (the real CLI) without a
// restart; bad pins, domain mismatches and unreachable peers store nothing; a CA vouches only for its
// own domain's names; refreshes accept only bundles that chain from the trusted one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCa, signLeafCertificate } from '../../certs/index.js';
import type { CommonConfig } from '../../services/core/config.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { issueRoot, NO_REVOCATIONS, verifyChain } from '../../services/core/credentials/index.js';
import { pinPeer } from '../../services/core/federation/bundle-client.js';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { BundleRefresher } from '../../services/core/federation/refresher.js';
import { hostService, type HostedService } from '../../services/core/host.js';
import { serializeTrustBundle, type TrustBundle } from '../../services/core/identity/trust-bundle.js';
import { createLogger } from '../../services/core/log.js';
import { createClient, isServiceError } from '../../services/core/rpc/client.js';
import type { TlsMaterial } from '../../services/core/rpc/server.js';
import { FederationService } from '../../services/generated/fedlab/v1/federation.js';
import { runCli } from '../helpers/cli.js';
import { makeTestPki, snapshotTree, type TestIdentity, type TestPki } from '../helpers/pki.js';
import { waitFor } from '../helpers/servers.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

const silent = createLogger({ level: 'silent' });
let tmp: string;
let plc: TestPki;
let emu: TestPki;
let plcSa: TestIdentity;
let emuMa: TestIdentity;
let emuSa: TestIdentity;
let emuBundle: { fingerprint: string; file: string; bundle: TrustBundle };
let plcFingerprint: string;
let a: HostedService;
let b: HostedService;
const peersA = () => join(tmp, 'a-peers');

function config(
  pki: TestPki,
  id: TestIdentity,
  bundleFile: string,
  name: string,
  extra: Partial<NonNullable<CommonConfig['federation']>> = {},
): CommonConfig {
  return {
    role: 'sa',
    urn: id.urn,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { ca: pki.caCertPath, cert: id.certPath, key: id.keyPath },
    trust_bundle: bundleFile,
    data_dir: join(tmp, `${name}-data`),
    log_level: 'silent',
    shutdown_grace_ms: 500,
    federation: {
      peers_dir: join(tmp, `${name}-peers`),
      reload_interval_ms: 100,
      refresh_interval_s: 0,
      refresh_deadline_ms: 5000,
      ...extra,
    },
  };
}

function tlsOf(id: TestIdentity, caPem: string): TlsMaterial {
  return { caCerts: caPem, cert: id.certPem, key: id.keyPem };
}

/** Calls A's GetBundle as `id` (trusting A's CA); resolves to the gRPC code (0 = OK). */
async function callA(id: { certPem: string; keyPem: string }): Promise<number> {
  const c = createClient(FederationService, {
    address: `127.0.0.1:${a.port}`,
    tls: { caCerts: plc.caPem, cert: id.certPem, key: id.keyPem },
    deadlineMs: 3000,
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  try {
    await c.getBundle({ domain: '' });
    return Status.OK;
  } catch (err) {
    if (isServiceError(err)) return err.code;
    throw err;
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'fedlab-fed-'));
  plc = await makeTestPki('plc.test');
  emu = await makeTestPki('emu.test');
  plcSa = await plc.issueServer('urn:fedlab:plc.test:authority:sa');
  emuMa = await emu.issueServer('urn:fedlab:emu.test:authority:ma');
  emuSa = await emu.issueServer('urn:fedlab:emu.test:authority:sa');
  const plcBundle = await plc.bundle();
  plcFingerprint = plcBundle.fingerprint;
  emuBundle = await emu.bundle({ file: join(tmp, 'emu-bundle.json') });
  a = await hostService(config(plc, plcSa, plcBundle.file, 'a'), silent, () => ({ registrations: [] }));
  b = await hostService(config(emu, emuMa, emuBundle.file, 'b', { bundle_listen: { host: '127.0.0.1', port: 0 } }), silent, () => ({
    registrations: [],
  }));
}, 60_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await plc?.cleanup();
  await emu?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

describe('federation peering', () => {
  it('refuses a bad pin, a domain mismatch and an unreachable peer, storing nothing', async () => {
    const before = snapshotTree(peersA());
    const wrong = `sha256:${'0'.repeat(64)}`;
    const bad = await runCli([
      'federation',
      'peer',
      'add',
      '--domain',
      'emu.test',
      '--endpoint',
      `127.0.0.1:${b.bundlePort}`,
      '--fingerprint',
      wrong,
      '--peers-dir',
      peersA(),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not the pinned sha256:0000/);
    // The same checks through the library the command uses (a CLI start costs seconds on a busy machine).
    await expect(
      pinPeer({ domain: 'other.test', endpoint: `127.0.0.1:${b.bundlePort}`, fingerprint: emuBundle.fingerprint }),
    ).rejects.toThrow(/only the bundle of emu\.test/);
    await expect(
      pinPeer({ domain: 'emu.test', endpoint: '127.0.0.1:1', fingerprint: emuBundle.fingerprint, deadlineMs: 3000 }),
    ).rejects.toThrow(/unreachable|did not answer/);
    await expect(pinPeer({ domain: 'emu.test', endpoint: 'nope', fingerprint: emuBundle.fingerprint })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(pinPeer({ domain: 'emu.test', endpoint: `127.0.0.1:${b.bundlePort}`, fingerprint: 'abc' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    // A server of another domain that serves a copy of emu.test's bundle (with the right pin) is not a server of emu.test.
    await expect(
      pinPeer({
        domain: 'emu.test',
        endpoint: `127.0.0.1:${a.port}`,
        fingerprint: emuBundle.fingerprint,
        identity: { cert: plcSa.certPem, key: plcSa.keyPem },
      }),
    ).rejects.toThrow(/only the bundle of plc\.test/);
    expect(snapshotTree(peersA())).toEqual(before);
  }, 120_000);

  it('refuses a client of the unpeered domain at TLS, and accepts it after peer add without a restart', async () => {
    expect(await callA(emuSa)).toBe(Status.UNAVAILABLE);
    const add = await runCli([
      'federation',
      'peer',
      'add',
      '--domain',
      'emu.test',
      '--endpoint',
      `127.0.0.1:${b.bundlePort}`,
      '--fingerprint',
      emuBundle.fingerprint,
      '--peers-dir',
      peersA(),
      '--json',
    ]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({
      domain: 'emu.test',
      fingerprint: emuBundle.fingerprint,
      pinned_fingerprint: emuBundle.fingerprint,
    });
    await waitFor(async () => (await callA(emuSa)) === Status.OK, 10_000, 'the peered client to be accepted');
    const ls = await runCli(['federation', 'peer', 'ls', '--peers-dir', peersA(), '--json']);
    expect(JSON.parse(ls.stdout).peers.map((p: { domain: string }) => p.domain)).toEqual(['emu.test']);
    const show = await runCli(['federation', 'peer', 'show', 'emu.test', '--peers-dir', peersA()]);
    expect(show.stdout).toMatch(/urn:fedlab:emu\.test:authority:sa/);
    // The credentials TrustStore got the peer's bundle too.
    expect(a.federation.trustStore.domains()).toEqual(['emu.test', 'plc.test']);
    // A's clients trust B's servers now (through the federation trust), and B's server must be of emu.test.
    const toB = createClient(FederationService, {
      address: `127.0.0.1:${b.port}`,
      tls: tlsOf(plcSa, plc.caPem),
      trust: a.federation,
      deadlineMs: 3000,
    });
    try {
      // B has not peered with A: B refuses A's certificate at TLS.
      await expect(toB.getBundle({ domain: '' })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    } finally {
      toB.close();
    }
  }, 150_000);

  it('peers the other way with --config, over the mutual-TLS port once the peer trusts us; clients with the federation trust reach peered servers', async () => {
    await waitFor(async () => (await callA(emuSa)) === Status.OK, 10_000, 'peering');
    const bConfig = join(tmp, 'b.json');
    writeFileSync(bConfig, JSON.stringify(config(emu, emuMa, emuBundle.file, 'b')));
    const add = await runCli([
      'federation',
      'peer',
      'add',
      '--domain',
      'plc.test',
      '--endpoint',
      `127.0.0.1:${a.port}`,
      '--fingerprint',
      plcFingerprint,
      '--config',
      bConfig,
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/^peered with plc\.test/);
    const self = await runCli([
      'federation',
      'peer',
      'add',
      '--domain',
      'emu.test',
      '--endpoint',
      `127.0.0.1:${b.bundlePort}`,
      '--fingerprint',
      emuBundle.fingerprint,
      '--config',
      bConfig,
    ]);
    expect(self.code).toBe(2);
    expect(self.stderr).toMatch(/own domain/);
    await waitFor(() => b.federation.peers().length === 1, 10_000, 'B to load its peer');
    const toB = createClient(FederationService, {
      address: `127.0.0.1:${b.port}`,
      tls: tlsOf(plcSa, plc.caPem),
      trust: a.federation,
      serverUrn: emuMa.urn,
      deadlineMs: 3000,
    });
    const plain = createClient(FederationService, {
      address: `127.0.0.1:${b.port}`,
      tls: tlsOf(plcSa, plc.caPem),
      serverUrn: emuMa.urn,
      deadlineMs: 3000,
    });
    try {
      await waitFor(
        async () =>
          await toB.getBundle({ domain: '' }).then(
            () => true,
            () => false,
          ),
        10_000,
        'A to reach B',
      );
      // Without the federation trust, A's client knows only A's CA and refuses B's server.
      await expect(plain.getBundle({ domain: '' })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    } finally {
      toB.close();
      plain.close();
    }
  }, 150_000);

  it("refuses a certificate from the peer's CA that names another domain (ours or a third's)", async () => {
    await waitFor(async () => (await callA(emuSa)) === Status.OK, 10_000, 'peering');
    const ca = await loadCa(emu.caDir);
    for (const urn of ['urn:fedlab:zzz.test:sp:mallory', 'urn:fedlab:plc.test:authority:ma']) {
      const keys = generateKeyPair('p256');
      // B's CA refuses to do this; a malicious B would not: sign it with B's CA key directly.
      const forged = await signLeafCertificate(
        { ...ca, domain: parseDomain(urn) },
        { urn, publicKey: keys.publicKey, dns: [], ip: [], days: 1 },
      );
      const keyPem = keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      expect(await callA({ certPem: forged.certPem, keyPem })).toBe(Status.UNAUTHENTICATED);
    }
  }, 60_000);

  it("does not let the peer's authority key root chains over our objects", async () => {
    const now = new Date();
    const holder = await plc.issue('urn:fedlab:plc.test:sp:acme');
    const over = async (target: string) =>
      (
        await issueRoot({
          key: emuSa.privateKey,
          issuer: emuSa.urn,
          subject: holder.urn,
          subjectKey: holder.jwk as never,
          targets: [target],
          privileges: ['sliver.create'],
          now,
        })
      ).chain;
    const holderInfo = { urn: holder.urn, thumbprint: holder.kid };
    const check = async (target: string) => {
      const chain = await over(target);
      return verifyChain({
        chain,
        trust: a.federation.trustStore,
        holder: holderInfo,
        privilege: 'sliver.create',
        object: target,
        now,
        revocations: NO_REVOCATIONS,
        cache: null,
      });
    };
    await expect(check('urn:fedlab:plc.test:node:n1')).rejects.toMatchObject({ rule: 'trust-anchor' });
    await expect(check('urn:fedlab:plc.test:node:n1')).rejects.toThrow(/anchor of emu\.test, not of plc\.test/);
    // Over its own domain's objects the same key is an anchor.
    expect((await check('urn:fedlab:emu.test:node:e1')).root.issuer).toBe(emuSa.urn);
  }, 60_000);

  it('refreshes: a bundle that chains from the trusted one is accepted, one with an unrelated CA is refused until re-pinned', async () => {
    const dir = new PeerDirectory(peersA());
    const refresher = new BundleRefresher({
      peersDir: peersA(),
      log: silent,
      identity: { cert: plcSa.certPem, key: plcSa.keyPem },
      intervalMs: 0,
      deadlineMs: 5000,
    });
    const record = await dir.get('emu.test');
    expect(record).toBeDefined();
    // Same CA, a new authority, higher serial: accepted.
    await emu.issue('urn:fedlab:emu.test:authority:sa2');
    const next = await emu.bundle({ file: emuBundle.file });
    const ok = await refresher.refreshOne(record!);
    expect(ok).toMatchObject({ result: 'accepted', fingerprint: next.fingerprint });
    const accepted = await dir.get('emu.test');
    expect(accepted?.fingerprint).toBe(next.fingerprint);
    expect(accepted?.pinned_fingerprint).toBe(emuBundle.fingerprint);
    await waitFor(
      () => a.federation.trustStore.bundle('emu.test')?.serial === next.bundle.serial,
      10_000,
      'the refreshed bundle to be trusted',
    );
    // A new CA that the trusted one never signed, with a higher serial: refused, nothing changes.
    const rogue = await makeTestPki('emu.test');
    try {
      const rogueBundle: TrustBundle = { ...next.bundle, serial: next.bundle.serial + 1, ca_certs: [rogue.caPem] };
      writeFileSync(emuBundle.file, serializeTrustBundle(rogueBundle));
      const refused = await refresher.refreshOne(accepted!);
      expect(refused.result).toBe('refused');
      expect(refused.detail).toMatch(/re-pin/);
      const after = await dir.get('emu.test');
      expect(after?.fingerprint).toBe(next.fingerprint);
      expect(after?.last_refresh?.result).toBe('refused');
      // Going back in serial is refused too.
      writeFileSync(emuBundle.file, serializeTrustBundle({ ...next.bundle, serial: next.bundle.serial - 1 }));
      expect((await refresher.refreshOne(after!)).result).toBe('refused');
    } finally {
      writeFileSync(emuBundle.file, serializeTrustBundle(next.bundle));
      await rogue.cleanup();
    }
  }, 60_000);

  it("refreshes on a schedule: another service of A's domain refreshes the shared peers directory, and A follows", async () => {
    const plcSa2 = await plc.issueServer('urn:fedlab:plc.test:authority:sa2');
    const c = await hostService(
      {
        ...config(plc, plcSa2, join(plc.dir, 'bundle.json'), 'c'),
        federation: { peers_dir: peersA(), reload_interval_ms: 100, refresh_interval_s: 1 },
      },
      silent,
      () => ({ registrations: [] }),
    );
    try {
      await emu.issue('urn:fedlab:emu.test:authority:sa3');
      const next = await emu.bundle({ file: emuBundle.file });
      await waitFor(
        () => a.federation.trustStore.bundle('emu.test')?.serial === next.bundle.serial,
        15_000,
        'the scheduled refresh to reach A',
      );
      expect((await new PeerDirectory(peersA()).get('emu.test'))?.last_refresh).toMatchObject({
        result: 'accepted',
        fingerprint: next.fingerprint,
      });
    } finally {
      await c.stop();
    }
  }, 60_000);

  it('peer rm stops trusting the peer without a restart', async () => {
    const rm = await runCli(['federation', 'peer', 'rm', 'emu.test', '--peers-dir', peersA()]);
    expect(rm.code).toBe(0);
    await waitFor(async () => (await callA(emuSa)) === Status.UNAVAILABLE, 10_000, 'the unpeered client to be refused');
    expect(a.federation.trustStore.domains()).toEqual(['plc.test']);
  }, 60_000);
});

function parseDomain(urn: string): string {
  return urn.split(':')[2] as string;
}
