// The one-call test PKI other suites use, and a real mutual-TLS handshake in Node with what it issues
// (P-256 and Ed25519, in every CA/leaf combination), including refusal of an unrelated CA of the same domain.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { identityFromCertificate } from '../../services/core/identity/certificate.js';
import { parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import type { KeyAlgName } from '../../services/core/identity/keys.js';
import { makeTestPki, type TestIdentity, type TestPki } from '../helpers/pki.js';

const made: TestPki[] = [];
async function pkiOf(domain: string, alg: KeyAlgName = 'p256'): Promise<TestPki> {
  const p = await makeTestPki(domain, { alg });
  made.push(p);
  return p;
}
afterAll(async () => {
  for (const p of made) await p.cleanup();
});

interface Handshake {
  ok: boolean;
  error?: string;
  serverSawUrn?: string;
  clientSawUrn?: string;
}

/** One mutual-TLS handshake over loopback; both sides verify the other against `ca`. */
async function handshake(server: TestIdentity, client: TestIdentity, serverCa: string, clientCa: string): Promise<Handshake> {
  let seen: string | undefined;
  let serverError: string | undefined;
  const srv = createServer(
    { key: server.keyPem, cert: server.certPem, ca: serverCa, requestCert: true, rejectUnauthorized: true },
    (sock: TLSSocket) => {
      const peer = sock.getPeerX509Certificate();
      seen = peer ? (peer.subjectAltName ?? '') : undefined;
      sock.end('hi');
    },
  );
  srv.on('tlsClientError', (e) => {
    serverError = e.message;
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise<Handshake>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port, servername: 'localhost', key: client.keyPem, cert: client.certPem, ca: clientCa });
      sock.on('secureConnect', () => {
        const peer = sock.getPeerX509Certificate();
        sock.once('data', () => {
          sock.end();
          resolve({ ok: true, serverSawUrn: seen, clientSawUrn: peer?.subjectAltName });
        });
      });
      // TLS 1.3 reports a refused client certificate after the handshake, as an error or a close.
      sock.on('error', (e) => resolve({ ok: false, error: `${e.message}${serverError ? ` / server: ${serverError}` : ''}` }));
      sock.on('close', () => resolve({ ok: false, error: serverError ?? 'closed' }));
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

describe('makeTestPki', () => {
  it('gives a CA, a localhost server, clients for any URN, and a bundle, each in one call', async () => {
    const pki = await pkiOf('plc.test');
    expect(pki.domain).toBe('plc.test');
    expect(new X509Certificate(pki.caPem).ca).toBe(true);
    expect(pki.caKeyPem).toMatch(/BEGIN PRIVATE KEY/);
    const server = await pki.issueServer('urn:fedlab:plc.test:authority:ma');
    expect(new X509Certificate(server.certPem).subjectAltName).toBe(
      'URI:urn:fedlab:plc.test:authority:ma, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    const alice = await pki.issue('urn:fedlab:plc.test:user:alice', { alg: 'ed25519' });
    const again = await pki.issue('urn:fedlab:plc.test:user:alice');
    expect(again.dir).not.toBe(alice.dir);
    for (const id of [server, alice, again]) {
      expect(readFileSync(id.certPath, 'utf8')).toBe(id.certPem);
      expect(readFileSync(id.keyPath, 'utf8')).toBe(id.keyPem);
      expect(statSync(id.keyPath).mode & 0o777).toBe(0o600);
      const r = spawnSync('openssl', ['verify', '-CAfile', id.caPath, id.certPath], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const who = await identityFromCertificate(new X509Certificate(id.certPem));
      expect(who.thumbprint).toBe(id.kid);
      expect(who.jwk).toEqual(id.jwk);
    }
    const b = await pki.bundle();
    const parsed = await parseTrustBundle(readFileSync(b.file, 'utf8'));
    expect(parsed.authorities).toEqual([{ urn: 'urn:fedlab:plc.test:authority:ma', jwk: server.jwk, kid: server.kid }]);
    expect(parsed.ca_certs).toEqual([pki.caPem]);
  });

  it('makes a past, expired certificate when asked', async () => {
    const pki = await makeTestPki('old.test', { now: new Date(Date.now() - 5 * 86_400_000) });
    made.push(pki);
    const old = await pki.issue('urn:fedlab:old.test:sp:gone', { days: 1, now: new Date(Date.now() - 4 * 86_400_000) });
    expect(Date.parse(new X509Certificate(old.certPem).validTo)).toBeLessThan(Date.now());
  });

  it('cleans up its directory', async () => {
    const pki = await makeTestPki('gone.test');
    expect(existsSync(pki.caDir)).toBe(true);
    await pki.cleanup();
    expect(existsSync(pki.dir)).toBe(false);
  });
});

describe('mutual TLS in Node with issued certificates', () => {
  it.each([
    ['p256', 'p256'],
    ['ed25519', 'ed25519'],
    ['p256', 'ed25519'],
    ['ed25519', 'p256'],
  ] as const)('a %s CA with %s leaves: the handshake succeeds and each side sees the other URN', async (caAlg, leafAlg) => {
    const pki = await pkiOf('plc.test', caAlg);
    const server = await pki.issueServer('urn:fedlab:plc.test:authority:ma', { alg: leafAlg });
    const client = await pki.issue('urn:fedlab:plc.test:sp:acme', { alg: leafAlg });
    const r = await handshake(server, client, pki.caPem, pki.caPem);
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.serverSawUrn).toBe('URI:urn:fedlab:plc.test:sp:acme');
    expect(r.clientSawUrn).toContain('URI:urn:fedlab:plc.test:authority:ma');
  });

  it('refuses a client certificate from an unrelated CA of the same domain', async () => {
    const pki = await pkiOf('plc.test', 'ed25519');
    const evil = await pkiOf('plc.test', 'ed25519');
    const server = await pki.issueServer('urn:fedlab:plc.test:authority:ma');
    const mallory = await evil.issue('urn:fedlab:plc.test:sp:acme');
    // Mallory trusts the real CA for the server, but its own certificate chains to the other CA.
    const r = await handshake(server, mallory, pki.caPem, pki.caPem);
    expect(r.ok).toBe(false);
  });
});
