// The management authority's delegation policy toward peered slice authorities, and
// `fedlab site delegate|revoke` against a real MA: the chain it writes passes `fedlab cred verify`.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCa, signLeafCertificate } from '../../certs/index.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/servers.js';
import { disposeParties, siteParties, startSite, type Site, type SiteParties } from '../helpers/ma-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

let site: Site;
let emu: SiteParties;
let geni: SiteParties;
let dir: string;

function delegateReq(sa: { urn: string; certPem: string }, requestId: string) {
  return {
    requestId,
    sliceAuthorityUrn: sa.urn,
    sliceAuthorityJwk: '',
    sliceAuthorityCertificatePem: sa.certPem,
    privileges: [],
    targets: [],
    limits: {},
    ttlS: 0,
    maxDelegations: 0,
  };
}

async function peer(p: SiteParties): Promise<void> {
  const bundle = await parseTrustBundle(readFileSync(p.bundleFile, 'utf8'));
  const fp = bundleFingerprint(bundle);
  const now = new Date().toISOString();
  await new PeerDirectory(join(dir, 'peers')).put({
    v: 1,
    domain: p.domain,
    endpoint: '127.0.0.1:9',
    pinned_fingerprint: fp,
    pinned_at: now,
    bundle,
    fingerprint: fp,
    accepted_at: now,
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlab-deleg-'));
  emu = await siteParties('emu.test');
  geni = await siteParties('geni.test');
  site = await startSite({
    parties: await siteParties('plc.test'),
    config: {
      delegation_policy: { allow: ['emu.test'] },
      federation: { peers_dir: join(dir, 'peers'), reload_interval_ms: 100, refresh_interval_s: 0 },
    },
  });
}, 60_000);

afterAll(async () => {
  await site?.destroy();
  await disposeParties();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('delegation to peered slice authorities', () => {
  it('needs the peer to be peered, refuses an SA the policy does not list, and accepts a listed one', async () => {
    const ma = site.maClient();
    await expect(ma.delegateToSliceAuthority(delegateReq(emu.sa, 'e0'))).rejects.toMatchObject({
      code: Status.FAILED_PRECONDITION,
      details: expect.stringMatching(/not peered/),
    });
    await peer(emu);
    await peer(geni);
    await waitFor(() => site.service!.federation.peers().length === 2, 10_000, 'the peers to load');
    const denied = (await ma.delegateToSliceAuthority(delegateReq(geni.sa, 'g1')).catch((e: unknown) => e)) as {
      code: number;
      details: string;
      metadata: { get(k: string): unknown[] };
    };
    expect(denied.code).toBe(Status.PERMISSION_DENIED);
    expect(denied.details).toMatch(/delegation_policy\.allow lists neither geni\.test nor urn:fedlab:geni\.test:authority:sa/);
    expect(denied.metadata.get('fedlab-rule')).toEqual(['delegation_policy']);
    const ok = await ma.delegateToSliceAuthority(delegateReq(emu.sa, 'e1'));
    expect(ok.chain).toHaveLength(1);
    // The own domain's SA stays allowed by default.
    expect((await ma.delegateToSliceAuthority(delegateReq(site.parties.sa, 'p1'))).chain).toHaveLength(1);
  }, 60_000);

  it("refuses a peered SA's certificate that its own domain's CA did not issue", async () => {
    const ca = await loadCa(geni.pki.caDir);
    const keys = generateKeyPair('p256');
    const forged = await signLeafCertificate(
      { ...ca, domain: 'emu.test' },
      { urn: 'urn:fedlab:emu.test:authority:sa', publicKey: keys.publicKey, dns: [], ip: [], days: 1 },
    );
    await expect(
      site.maClient().delegateToSliceAuthority(delegateReq({ urn: 'urn:fedlab:emu.test:authority:sa', certPem: forged.certPem }, 'f1')),
    ).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      details: expect.stringMatching(/not issued by a CA of emu\.test/),
    });
  }, 60_000);

  it('fedlab site delegate writes a chain that fedlab cred verify accepts; a refused delegation writes nothing', async () => {
    const p = site.parties;
    const out = join(dir, 'ma-sa.chain');
    const args = [
      'site',
      'delegate',
      '--ma',
      site.address,
      '--ma-urn',
      p.maUrn,
      '--tls-dir',
      p.admin.dir,
      '--sa-urn',
      p.sa.urn,
      '--sa-cert',
      p.sa.certPath,
      '--lim',
      'slivers=20',
      '--ttl',
      '7d',
      '--out',
      out,
      '--json',
    ];
    const res = await runCli(args);
    expect(res.code, res.stderr).toBe(0);
    const printed = JSON.parse(res.stdout) as { jti: string; links: number };
    expect(printed.links).toBe(1);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(1);
    const verify = await runCli([
      'cred',
      'verify',
      out,
      '--trust',
      p.bundleFile,
      '--holder-cert',
      p.sa.certPath,
      '--priv',
      'sliver.create',
      '--target',
      'urn:fedlab:plc.test:node:n1',
    ]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^valid: urn:fedlab:plc\.test:authority:sa holds a chain of 1 link/);
    expect(verify.stdout).toMatch(/slivers=20/);

    const refusedOut = join(dir, 'geni.chain');
    const refused = await runCli([
      'site',
      'delegate',
      '--ma',
      site.address,
      '--tls-dir',
      p.admin.dir,
      '--sa-urn',
      geni.sa.urn,
      '--sa-cert',
      geni.sa.certPath,
      '--out',
      refusedOut,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/delegation_policy/);
    expect(existsSync(refusedOut)).toBe(false);

    const revoke = await runCli([
      'site',
      'revoke',
      '--ma',
      site.address,
      '--tls-dir',
      p.admin.dir,
      '--jti',
      printed.jti,
      '--reason',
      'test',
      '--json',
    ]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(JSON.parse(revoke.stdout).version).toBeGreaterThan(0);
  }, 180_000);
});
