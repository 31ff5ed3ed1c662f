// The caller's identity is cached per HTTP/2 session (rpc/context.ts): many calls on one connection see
// its certificate's URN and key; connections with other certificates, open at the same time or one after
// the other, are never given another connection's identity; and the session's internal shape in the
// installed grpc-js is still the one the cache reads (otherwise every call would rebuild the certificate).
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationService } from '../../services/generated/fedlab/v1/federation.js';
import { defineService } from '../../services/core/rpc/adapter.js';
import { createClient } from '../../services/core/rpc/client.js';
import { startServer, type RunningServer, type TlsMaterial } from '../../services/core/rpc/server.js';
import { silentLogger } from '../../services/core/log.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';

const DOMAIN = 'plc.test';
const MA = `urn:fedlab:${DOMAIN}:authority:ma`;

let pki: TestPki;
let server: RunningServer;
let serverTls: TlsMaterial;
/** Times the server read a client's peer certificate. */
let certificateReads = 0;

/** Answers with the caller's URN and key thumbprint as the server sees them. */
const whoAmI = defineService(FederationService, {
  async getBundle(_request, ctx) {
    return { domain: ctx.peer.urn, serial: 0, fingerprint: ctx.peer.thumbprint, bundleJson: '' };
  },
});

beforeAll(async () => {
  pki = await makeTestPki(DOMAIN);
  const s = await pki.issue(MA, { dns: ['localhost'], ip: ['127.0.0.1'] });
  serverTls = { caCerts: pki.caPem, cert: s.certPem, key: s.keyPem };
  server = await startServer({ port: 0, tls: serverTls, log: silentLogger() }, [whoAmI]);
  // Count the server's reads of peer certificates (grpc-js's getAuthContext calls getPeerCertificate on
  // the connection's TLS socket; client sockets, which have no server, are not counted).
  const read = TLSSocket.prototype.getPeerCertificate;
  TLSSocket.prototype.getPeerCertificate = function (this: TLSSocket & { server?: unknown }, detailed?: boolean) {
    if (this.server) certificateReads++;
    return read.call(this, detailed as true);
  } as typeof read;
});

afterAll(async () => {
  await server?.stop();
});

async function principal(name: string) {
  const id = await pki.issue(`urn:fedlab:${DOMAIN}:user:${name}`);
  const tls: TlsMaterial = { caCerts: pki.caPem, cert: id.certPem, key: id.keyPem };
  return { urn: id.urn, kid: id.kid, client: createClient(FederationService, { address: `127.0.0.1:${server.port}`, tls, serverUrn: MA }) };
}

describe('the caller identity cache', () => {
  it('reads the certificate once per connection and gives every call on it that connection’s identity', async () => {
    const alice = await principal('alice');
    const before = certificateReads;
    for (let i = 0; i < 20; i++) {
      const r = await alice.client.getBundle({ domain: '' });
      expect(r.domain).toBe(alice.urn);
      expect(r.fingerprint).toBe(alice.kid);
    }
    expect(certificateReads - before).toBe(1);
    alice.client.close();
  });

  it('never gives one connection the identity of another, concurrently or after it closed', async () => {
    const alice = await principal('alice2');
    const bob = await principal('bob');
    const both = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        ((i & 1 ? bob : alice).client.getBundle({ domain: '' }) as Promise<{ domain: string }>).then((r) => [i, r.domain] as const),
      ),
    );
    for (const [i, urn] of both) expect(urn).toBe(i & 1 ? bob.urn : alice.urn);
    alice.client.close();
    // A new connection from the same process, with another certificate, after the first closed.
    const carol = await principal('carol');
    expect((await carol.client.getBundle({ domain: '' })).domain).toBe(carol.urn);
    expect((await bob.client.getBundle({ domain: '' })).domain).toBe(bob.urn);
    bob.client.close();
    carol.client.close();
  });
});
