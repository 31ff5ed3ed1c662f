// The HPACK tables Fedlab's RPC core raises (services/core/rpc/hpack-table.ts): once installed, an HTTP/2
// server advertises a 16 KiB decoder table and a client uses an encoder table that large, so a 4-link
// credential chain (four ~0.9 KB headers) is sent in full once and then as table indices, even with a
// header whose value changes on every call (as grpc-timeout does); and grpc-js's own sessions are made
// through the wrapped functions (checked on a real grpc-js server and client, so a grpc-js upgrade that
// stops looking them up at use shows here).
import http2 from 'node:http2';
import { Client, credentials, Metadata, Server, ServerCredentials, status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestIdentity, type TestPki } from '../../certs/index.js';
import { HPACK_TABLE_BYTES, hpackTableUses, installHpackTables } from '../../services/core/rpc/hpack-table.js';

describe('HPACK tables for credential chains', () => {
  let pki: TestPki;
  let server: TestIdentity;
  beforeAll(async () => {
    pki = await createTestPki({ domain: 'hpack.test' });
    server = await pki.issueServer('urn:fedlab:hpack.test:node:n1');
    installHpackTables();
  });
  afterAll(async () => {
    await pki.cleanup();
  });

  it('sends a 4-link chain once, then by index, with a header that changes on every request', async () => {
    const srv = http2.createSecureServer({ key: server.keyPem, cert: server.certPem });
    srv.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end();
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as { port: number }).port;
    const client = http2.connect(`https://localhost:${port}`, { ca: pki.caPem });
    const links = Array.from({ length: 4 }, (_, i) => `${'x'.repeat(880)}${i}`);
    const send = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const req = client.request({ ':path': '/', 'grpc-timeout': `${5000 - n}m`, 'fedlab-credential': links });
        req.on('response', () => undefined);
        req.on('error', reject);
        req.on('close', resolve);
        req.resume();
        req.end();
      });
    try {
      await send(0);
      const before = client.socket.bytesWritten;
      for (let n = 1; n <= 50; n++) await send(n);
      const perRequest = (client.socket.bytesWritten - before) / 50;
      // By index, a few dozen bytes a request (23 here); with 4 KiB tables a link is evicted and sent in
      // full about every other request (459 bytes a request on average here), and each link is ~0.9 KB.
      expect(perRequest).toBeLessThan(200);
      expect(client.state.deflateDynamicTableSize).toBeGreaterThan(4096);
      expect(client.remoteSettings.headerTableSize).toBe(HPACK_TABLE_BYTES);
    } finally {
      client.close();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });

  it("reaches grpc-js's own servers and client sessions", async () => {
    const start = hpackTableUses();
    const grpcServer = new Server();
    grpcServer.addService(
      {
        ping: {
          path: '/hpack.Test/Ping',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      { ping: (_call: unknown, cb: (e: null, r: Buffer) => void) => cb(null, Buffer.alloc(0)) },
    );
    const port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(
        '127.0.0.1:0',
        ServerCredentials.createSsl(null, [{ private_key: Buffer.from(server.keyPem), cert_chain: Buffer.from(server.certPem) }]),
        (err, p) => (err ? reject(err) : resolve(p)),
      ),
    );
    const client = new Client(`localhost:${port}`, credentials.createSsl(Buffer.from(pki.caPem)));
    try {
      const code = await new Promise<number>((resolve) =>
        client.makeUnaryRequest(
          '/hpack.Test/Ping',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          new Metadata(),
          { deadline: Date.now() + 5000 },
          (err) => resolve(err ? (err.code ?? -1) : Status.OK),
        ),
      );
      expect(code).toBe(Status.OK);
      const now = hpackTableUses();
      expect(now.servers).toBeGreaterThan(start.servers);
      expect(now.connects).toBeGreaterThan(start.connects);
    } finally {
      client.close();
      grpcServer.forceShutdown();
    }
  });
});
