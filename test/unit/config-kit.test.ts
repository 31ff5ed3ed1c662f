// The local-federation kit (cli/kit): configs typed from the roles' own schemas and checked when they
// are built, and the one helper that writes peer records.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeChainFile } from '../../cli/chain-file.js';
import { NO_BUNDLE_ENDPOINT, peerEachOther } from '../../cli/kit/peering.js';
import { maConfig, nmConfig, saConfig, spConfig, type MaConfigInput } from '../../cli/kit/role-configs.js';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { toMaSettings } from '../../services/management-authority/config.js';
import { PeerDirectory } from '../../services/core/federation/peers.js';
import { bundleFingerprint, parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { makeTestPki } from '../helpers/pki.js';

const dir = mkdtempSync(join(tmpdir(), 'fedlab-kit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const common = {
  listen: { host: '127.0.0.1', port: 0 },
  tls: { ca: 'pki/ca.pem', cert: 'pki/cert.pem', key: 'pki/key.pem' },
  trust_bundle: 'pki/bundle.json',
  data_dir: 'data',
};
const ma: MaConfigInput = { ...common, urn: 'urn:fedlab:plc.test:authority:ma', style: 'emulab', heartbeat: { interval_ms: 200 } };

describe('role configs', () => {
  it('builds a config of each role, writes it and compiles it from the file as fedlab serve does', () => {
    const built = maConfig(ma);
    expect(built.role).toBe('ma');
    expect(built.content).toMatchObject({ role: 'ma', style: 'emulab' });
    const file = join(dir, 'ma.json');
    const compiled = built.writeAndCompile(file);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ role: 'ma', ...ma });
    expect(compiled.tls.ca).toBe(join(dir, 'pki/ca.pem'));
    expect(compiled.heartbeat).toEqual({ interval_ms: 200, flush_interval_ms: 1000 });
    expect(Object.isFrozen(compiled)).toBe(true);
    // The MA's restart grace: three heartbeat intervals unless the config sets it.
    expect(toMaSettings(compiled).heartbeat.restartGraceMs).toBe(600);
    const graced = maConfig({ ...ma, heartbeat: { interval_ms: 200, restart_grace_ms: 5000 } }).writeAndCompile(join(dir, 'ma-grace.json'));
    expect(toMaSettings(graced).heartbeat.restartGraceMs).toBe(5000);

    expect(
      nmConfig({ ...common, urn: 'urn:fedlab:plc.test:node:n1', owner: { certificate: 'owner.pem' }, driver: 'simulated' }).content.role,
    ).toBe('nm');
    expect(saConfig({ ...common, urn: 'urn:fedlab:plc.test:authority:sa', limits: { site_deadline_ms: 5000 } }).content.role).toBe('sa');
    expect(
      spConfig({
        ...common,
        urn: 'urn:fedlab:plc.test:sp:acme',
        admins: ['urn:fedlab:plc.test:user:op'],
        slice_authority: { urn: 'urn:fedlab:plc.test:authority:sa', endpoint: 'localhost:7002' },
      }).content.role,
    ).toBe('sp');
  });

  it('refuses a bad value when the config is built, naming the field, and writes nothing', () => {
    const file = join(dir, 'bad.json');
    const build = () => maConfig({ ...ma, listen: { port: 70_000 } }).writeTo(file);
    expect(build).toThrow(InvalidArgumentError);
    expect(build).toThrow(/invalid ma config: listen\.port/);
    expect(() => readFileSync(file)).toThrow(/ENOENT/);
    // A rule of the schema beyond types: a slice authority's URN must be an authority's.
    expect(() => saConfig({ ...common, urn: 'urn:fedlab:plc.test:sp:acme' })).toThrow(/urn: a slice authority runs as an authority/);
  });

  it('makes a misspelt key a type error (and refuses it at run time too)', () => {
    expect(() =>
      maConfig({
        ...ma,
        // @ts-expect-error -- `intervall_ms` is not a key of the MA's heartbeat section
        heartbeat: { intervall_ms: 200 },
      }),
    ).toThrow(/heartbeat: .*intervall_ms/);
    const misspelt = () =>
      nmConfig({
        ...common,
        urn: 'urn:fedlab:plc.test:node:n1',
        owner: { certificate: 'owner.pem' },
        // @ts-expect-error -- `log_levle` is not a config key
        log_levle: 'info',
      });
    expect(misspelt).toThrow(/log_levle/);
  });
});

describe('peering and chain files', () => {
  it('peers every domain with every other, as fedlab federation peer add leaves them', async () => {
    const pkis = await Promise.all(['plc.test', 'emu.test', 'geni.test'].map((d) => makeTestPki(d)));
    const bundles = await Promise.all(pkis.map(async (p) => (await p.bundle()).file));
    await peerEachOther(bundles.map((bundleFile) => ({ bundleFile })));
    for (const [i, pki] of pkis.entries()) {
      const { records, errors } = await new PeerDirectory(join(pki.dir, 'peers')).list();
      expect(errors).toEqual([]);
      const others = pkis
        .filter((_, j) => j !== i)
        .map((p) => p.domain)
        .sort();
      expect(records.map((r) => r.domain).sort()).toEqual(others);
      for (const r of records) {
        const bundle = await parseTrustBundle(readFileSync(bundles[pkis.findIndex((p) => p.domain === r.domain)] as string, 'utf8'));
        expect(r).toMatchObject({
          endpoint: NO_BUNDLE_ENDPOINT,
          pinned_fingerprint: bundleFingerprint(bundle),
          fingerprint: bundleFingerprint(bundle),
        });
      }
    }
    for (const p of pkis) await p.cleanup();
  });

  it('writes a chain file: one link per line, for its owner only', () => {
    const file = writeChainFile(join(dir, 'a.chain'), ['x.y.z', 'a.b.c']);
    expect(readFileSync(file, 'utf8')).toBe('x.y.z\na.b.c\n');
  });
});
