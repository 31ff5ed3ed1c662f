// `fedlab serve` as a real process: it serves Federation.GetBundle over mTLS, stops cleanly on SIGTERM,
// and refuses a bad config with exit code 2 without touching the disk.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationService } from '../../services/generated/fedlab/v1/federation.js';
import { createClient } from '../../services/core/rpc/client.js';
import { bundleFingerprint, parseTrustBundle, serializeTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { exited, runCli, startCli } from '../helpers/cli.js';

let pki: TestPki;
let dir: string;
let fingerprint: string;
let client: { ca: string; cert: string; key: string };

const config = (over: Record<string, unknown> = {}) => ({
  role: 'ma',
  urn: 'urn:fedlab:plc.test:authority:ma',
  listen: { host: '127.0.0.1', port: 0 },
  tls: { ca: 'ca.pem', cert: 'ma-cert.pem', key: 'ma-key.pem' },
  trust_bundle: 'bundle.json',
  data_dir: 'data',
  shutdown_grace_ms: 2000,
  ...over,
});

beforeAll(async () => {
  pki = await makeTestPki('plc.test');
  dir = mkdtempSync(join(tmpdir(), 'fedlab-serve-'));
  const ma = await pki.issue('urn:fedlab:plc.test:authority:ma', { dns: ['localhost'], ip: ['127.0.0.1'] });
  const sp = await pki.issue('urn:fedlab:plc.test:sp:acme');
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(join(dir, 'ma-cert.pem'), ma.certPem);
  writeFileSync(join(dir, 'ma-key.pem'), ma.keyPem, { mode: 0o600 });
  const bundle = await parseTrustBundle({
    v: 1,
    domain: 'plc.test',
    serial: 5,
    issued_at: '2026-01-01T00:00:00Z',
    ca_certs: [pki.caPem],
    authorities: [],
    revocation_version: 0,
  });
  writeFileSync(join(dir, 'bundle.json'), serializeTrustBundle(bundle));
  fingerprint = bundleFingerprint(bundle);
  client = { ca: pki.caPem, cert: sp.certPem, key: sp.keyPem };
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fedlab serve', () => {
  it('serves the bundle over mTLS and stops cleanly on SIGTERM', async () => {
    const file = join(dir, 'ma.json');
    writeFileSync(file, JSON.stringify(config()));
    const { child, line } = await startCli(['serve', 'ma', '--config', file], (l) => l.msg === 'listening');
    try {
      const port = Number(String(line.address).split(':').pop());
      expect(port).toBeGreaterThan(0);
      const c = createClient(FederationService, {
        address: `localhost:${port}`,
        tls: { caCerts: client.ca, cert: client.cert, key: client.key },
      });
      try {
        const res = await c.getBundle({ domain: '' });
        expect(res.fingerprint).toBe(fingerprint);
        expect(res.serial).toBe(5);
      } finally {
        c.close();
      }
      expect(existsSync(join(dir, 'data'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited(child)).toBe(0);
  });

  it.each([
    ['an unknown key', config({ colour: 'blue' }), /unknown key "colour"/],
    ['a bad port', config({ listen: { host: '127.0.0.1', port: -1 } }), /listen\.port/],
    ['another role', config({ role: 'sa' }), /for role sa, not ma/],
    [
      'a missing certificate file',
      config({ tls: { ca: 'ca.pem', cert: 'nope.pem', key: 'ma-key.pem' } }),
      /tls\.cert: cannot read .*ENOENT/,
    ],
    [
      'a bundle of another domain',
      config({ urn: 'urn:fedlab:other.test:authority:ma' }),
      /for domain plc\.test, but this service is in other\.test/,
    ],
  ])('refuses %s with exit 2 and writes nothing', async (_what, value, message) => {
    const sub = mkdtempSync(join(dir, 'bad-'));
    for (const f of ['ca.pem', 'ma-cert.pem', 'ma-key.pem', 'bundle.json'])
      writeFileSync(join(sub, f), (await import('node:fs')).readFileSync(join(dir, f)));
    const file = join(sub, 'ma.json');
    writeFileSync(file, JSON.stringify(value));
    const res = await runCli(['serve', 'ma', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(existsSync(join(sub, 'data'))).toBe(false);
  });

  it.each([
    [
      'its API port',
      (port: number) => config({ listen: { host: '127.0.0.1', port } }),
      /listen: cannot listen on 127\.0\.0\.1:(\d+): the port is in use/,
    ],
    [
      'its enrolment port',
      (port: number) => config({ enrolment: { listen: { host: '127.0.0.1', port }, ca_dir: pki.caDir } }),
      /enrolment\.listen: cannot listen on 127\.0\.0\.1:(\d+): the port is in use/,
    ],
  ])('names the listener whose port is in use (%s) and exits 2', async (_what, make, message) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const sub = mkdtempSync(join(dir, 'busy-'));
      for (const f of ['ca.pem', 'ma-cert.pem', 'ma-key.pem', 'bundle.json']) writeFileSync(join(sub, f), readFileSync(join(dir, f)));
      const file = join(sub, 'ma.json');
      writeFileSync(file, JSON.stringify(make(port)));
      const res = await runCli(['serve', 'ma', '--config', file]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(message);
      expect(Number(message.exec(res.stderr)?.[1])).toBe(port);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('refuses an unknown role as a usage error', async () => {
    const res = await runCli(['serve', 'boss', '--config', 'x.json']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/boss/);
  });
});
