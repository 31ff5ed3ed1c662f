// Connections per client address on the public listeners (issue 15 item 3): the enrolment listener and
// the public bundle endpoint accept anyone's TLS, so one address may hold at most a cap of connections
// (TLS handshakes left half-done count too); one more is refused at once, while the listener keeps
// answering other addresses, and a connection that closes frees its slot. Real listeners on loopback:
// 127.0.0.1 and 127.0.0.2 are two client addresses.
import { connect as connectHttp2 } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBundleListener } from '../../services/core/federation/bundle-listener.js';
import type { BundleSource } from '../../services/core/federation/bundle-source.js';
import { silentLogger } from '../../services/core/log.js';
import { DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, startPublicListener, type PublicListener } from '../../services/core/rpc/public-listener.js';
import { FederationService, GetBundleRequest, type GetBundleResponse } from '../../services/generated/fedlab/v1/federation.js';
import { startEnrolmentListener } from '../../services/management-authority/enrolment-server.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { waitFor } from '../helpers/servers.js';

let pki: TestPki;
let tls: { cert: string; key: string };
const held: Socket[] = [];

beforeAll(async () => {
  pki = await makeTestPki('plc.test');
  const ma = await pki.issue('urn:fedlab:plc.test:authority:ma', { dns: ['localhost'], ip: ['127.0.0.1'] });
  tls = { cert: ma.certPem, key: ma.keyPem };
});

afterAll(async () => {
  for (const s of held.splice(0)) s.destroy();
  await pki?.cleanup();
});

/** TLS (h2) to the listener over TCP from the local address `from`. */
function tlsFrom(port: number, from: string) {
  return connectTls({
    socket: connectTcp({ host: '127.0.0.1', port, localAddress: from }),
    ca: pki.caPem,
    servername: 'localhost',
    ALPNProtocols: ['h2'],
  });
}

/** Opens a TLS connection from `from`; resolves 'connected' once the handshake is done, 'refused' if the socket closes first. */
function tlsConnection(port: number, from: string): Promise<{ outcome: 'connected' | 'refused'; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = tlsFrom(port, from);
    socket.once('secureConnect', () => resolve({ outcome: 'connected', socket }));
    socket.once('error', () => undefined);
    socket.once('close', () => resolve({ outcome: 'refused', socket }));
  });
}

/** A plain TCP connection that never starts TLS (a half-open handshake), held open. */
function tcpConnection(port: number, from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: '127.0.0.1', port, localAddress: from });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Federation.GetBundle over its own HTTP/2 connection from `from`; resolves the grpc-status, or 'refused'. */
function getBundleFrom(port: number, from: string): Promise<string> {
  return new Promise((resolve) => {
    const session = connectHttp2(`https://localhost:${port}`, {
      createConnection: () => tlsFrom(port, from),
    });
    let status: string | undefined;
    const done = (s: string): void => {
      status ??= s;
      session.destroy();
      resolve(status);
    };
    session.once('error', () => done('refused'));
    session.once('close', () => done('refused'));
    const req = session.request({
      ':method': 'POST',
      ':path': '/fedlab.v1.Federation/GetBundle',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const body = GetBundleRequest.encode({ domain: '' }).finish();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    req.end(frame);
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    });
    req.on('trailers', (t) => (status = String(t['grpc-status'])));
    req.on('data', () => undefined);
    req.on('end', () => done(status ?? 'no status'));
    req.on('error', () => done('refused'));
  });
}

/** Fills `from`'s allowance on `port` with `n` connections (half of them TLS that completed, the rest bare TCP). */
async function fill(port: number, from: string, n: number): Promise<Socket[]> {
  const mine: Socket[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      const c = await tlsConnection(port, from);
      expect(c.outcome, `connection ${i + 1} of ${n}`).toBe('connected');
      mine.push(c.socket);
    } else {
      mine.push(await tcpConnection(port, from));
    }
  }
  held.push(...mine);
  return mine;
}

describe('connections per client address on a public listener', () => {
  const CAP = 4;
  let listener: PublicListener;

  beforeAll(async () => {
    listener = await startPublicListener({
      host: '127.0.0.1',
      port: 0,
      tls,
      log: silentLogger(),
      setting: 'test.listen',
      name: 'test',
      maxConnectionsPerAddress: CAP,
      methods: {
        getBundle: {
          definition: FederationService.getBundle,
          originalName: 'GetBundle',
          handle: async (): Promise<GetBundleResponse> => ({ domain: 'plc.test', serial: 1, fingerprint: 'sha256:0', bundleJson: '{}' }),
        },
      },
    });
  });

  afterAll(async () => {
    await listener?.stop();
  });

  it('refuses one connection more than the cap from one address, answers another address meanwhile, and frees a slot when a connection closes', async () => {
    expect(await getBundleFrom(listener.port, '127.0.0.1')).toBe('0');
    const mine = await fill(listener.port, '127.0.0.1', CAP);

    // The cap is reached: a further TLS connection and a whole call from this address are refused.
    expect((await tlsConnection(listener.port, '127.0.0.1')).outcome).toBe('refused');
    expect(await getBundleFrom(listener.port, '127.0.0.1')).toBe('refused');

    // Another address is served as usual.
    expect(await getBundleFrom(listener.port, '127.0.0.2')).toBe('0');

    // One connection closes: its slot is free again.
    mine[0]?.destroy();
    await waitFor(async () => (await getBundleFrom(listener.port, '127.0.0.1')) === '0', 5000, 'a call from 127.0.0.1 once a slot is free');
    for (const s of mine) s.destroy();
  }, 30_000);
});

describe('both public listeners apply the default cap', () => {
  const bundle: BundleSource = {
    domain: 'plc.test',
    current: async () => ({ bundle: { domain: 'plc.test', serial: 1 } as never, json: '{}', fingerprint: 'sha256:0' }),
  };

  it(`the public bundle endpoint: ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS} connections from one address, then refused`, async () => {
    const listener = await startBundleListener({ host: '127.0.0.1', port: 0, tls, bundle, log: silentLogger() });
    try {
      const mine = await fill(listener.port, '127.0.0.1', DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
      expect((await tlsConnection(listener.port, '127.0.0.1')).outcome).toBe('refused');
      expect(await getBundleFrom(listener.port, '127.0.0.2')).toBe('0');
      for (const s of mine) s.destroy();
    } finally {
      await listener.stop();
    }
  }, 30_000);

  it(`the enrolment listener: ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS} connections from one address, then refused`, async () => {
    const listener = await startEnrolmentListener({
      host: '127.0.0.1',
      port: 0,
      tls: { caCerts: pki.caPem, ...tls },
      log: silentLogger(),
      enroll: async () => {
        throw new Error('not in this test');
      },
    });
    try {
      const mine = await fill(listener.port, '127.0.0.1', DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
      expect((await tlsConnection(listener.port, '127.0.0.1')).outcome).toBe('refused');
      expect((await tlsConnection(listener.port, '127.0.0.2')).outcome).toBe('connected');
      for (const s of mine) s.destroy();
    } finally {
      await listener.stop();
    }
  }, 30_000);
});
