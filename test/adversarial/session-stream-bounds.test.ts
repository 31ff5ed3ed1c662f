// What one authenticated peer can do to a server with a session stream (services/core/rpc/session-stream.ts),
// tried over mutual TLS against a real server: open more streams than its share, send faster than the rate or
// larger than the size limit, go quiet, stop reading answers, keep a stream open after the trust in its CA is
// withdrawn. Each ends the stream with its documented code; the server logs one call per stream and keeps
// serving others.
import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  ServerCredentials,
  status as Status,
  type ClientDuplexStream,
  type ServiceError,
} from '@grpc/grpc-js';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnauthenticatedError } from '../../services/core/errors.js';
import type { ServiceMetrics } from '../../services/core/metrics/service-metrics.js';
import type { ServiceRegistration, SessionHandler } from '../../services/core/rpc/adapter.js';
import { startServer, type RunningServer, type TlsMaterial } from '../../services/core/rpc/server.js';
import { silentLogger } from '../../services/core/log.js';
import { makeTestPki } from '../helpers/pki.js';
import { until } from '../../services/core/timing.js';

const raw = (b: Buffer): Buffer => b;
const method = (name: string) => ({
  path: `/fedlab.test.Chat/${name}`,
  requestStream: true,
  responseStream: true,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
});
const DEF = { talk: method('Talk'), quiet: method('Quiet'), big: method('Big') };

let server: RunningServer;
let clientTls: TlsMaterial;
let untrusted = false;
let opened = 0;
let closed = 0;
const observed: { method: string; code: string }[] = [];

function handler(answer: (req: Buffer) => Buffer, limits: SessionHandler<Buffer, Buffer>['limits']): SessionHandler<Buffer, Buffer> {
  return {
    limits,
    open: () => {
      opened++;
      return { message: answer, close: () => void closed++ };
    },
  };
}

beforeAll(async () => {
  const pki = await makeTestPki('chat.test');
  const s = await pki.issue('urn:fedlab:chat.test:authority:ma', { dns: ['localhost'], ip: ['127.0.0.1'] });
  const c = await pki.issue('urn:fedlab:chat.test:node:n1');
  clientTls = { caCerts: pki.caPem, cert: c.certPem, key: c.keyPem };
  const reg: ServiceRegistration = {
    name: 'fedlab.test.Chat',
    definition: DEF,
    handlers: {
      talk: handler((req) => req, { maxPerCaller: 2, messagesPerSecond: 5, burst: 10 }) as never,
      quiet: handler((req) => req, { idleMs: 300 }) as never,
      // 256 KiB per answer: a client that does not read fills the send window in a few messages.
      big: handler(() => Buffer.alloc(256 * 1024, 1), { stallMs: 400, messagesPerSecond: 1000, burst: 1000, maxPerCaller: 1 }) as never,
    },
  };
  const metrics = {
    observeCall: (m: string, code: string) => observed.push({ method: m, code }),
  } as unknown as ServiceMetrics;
  // The transport's CA trust, with a switch to withdraw it from the client's CA while its stream is open.
  const trust = {
    serverCredentials: () =>
      ServerCredentials.createSsl(
        Buffer.from(pki.caPem),
        [{ private_key: Buffer.from(s.keyPem), cert_chain: Buffer.from(s.certPem) }],
        true,
      ),
    checkClient: () => {
      if (untrusted) throw new UnauthenticatedError('the CA of this certificate is no longer trusted', { rule: 'ca-domain' });
    },
  };
  server = await startServer(
    {
      port: 0,
      tls: { caCerts: pki.caPem, cert: s.certPem, key: s.keyPem },
      log: silentLogger(),
      shutdownGraceMs: 500,
      limits: { maxReceiveBytes: 1024, maxSendBytes: 1024 * 1024 },
      metrics,
      trust: trust as never,
    },
    [reg],
  );
});

afterAll(async () => {
  await server?.stop();
});

function client(): Client {
  return new Client(
    `localhost:${server.port}`,
    grpcCredentials.createSsl(Buffer.from(clientTls.caCerts), Buffer.from(clientTls.key), Buffer.from(clientTls.cert)),
  );
}

/** Opens a stream and resolves with how it ended; answers are counted. */
function open(
  c: Client,
  path: string,
  read = true,
): { call: ClientDuplexStream<Buffer, Buffer>; answers: () => number; ended: Promise<ServiceError | { code: Status; details: string }> } {
  const call = c.makeBidiStreamRequest(path, raw, raw, new Metadata(), {});
  let answers = 0;
  if (read) call.on('data', () => answers++);
  const ended = new Promise<{ code: Status; details: string }>((resolve) => {
    call.on('error', (e: ServiceError) => resolve(e));
    call.on('status', (s: { code: Status; details: string }) => resolve(s));
  });
  return { call, answers: () => answers, ended };
}

describe('session stream bounds', () => {
  it('answers each message once, in order, and ends with OK at a half-close, one call observed per stream', async () => {
    const c = client();
    try {
      const before = observed.length;
      const s = open(c, DEF.talk.path);
      for (let i = 0; i < 5; i++) s.call.write(Buffer.from([i]));
      s.call.end();
      expect((await s.ended).code).toBe(Status.OK);
      expect(s.answers()).toBe(5);
      await until(() => observed.length === before + 1, 2000, 'one observation');
      expect(observed.at(-1)).toEqual({ method: DEF.talk.path, code: 'OK' });
    } finally {
      c.close();
    }
  });

  it('refuses a caller a third stream of the method (RESOURCE_EXHAUSTED), the first two still served', async () => {
    const c = client();
    try {
      const a = open(c, DEF.talk.path);
      const b = open(c, DEF.talk.path);
      a.call.write(Buffer.from([1]));
      b.call.write(Buffer.from([1]));
      await until(() => a.answers() === 1 && b.answers() === 1, 3000, 'two streams answering');
      const third = open(c, DEF.talk.path);
      third.call.write(Buffer.from([1]));
      const end = await third.ended;
      expect(end.code).toBe(Status.RESOURCE_EXHAUSTED);
      expect(end.details).toMatch(/open streams/);
      a.call.end();
      b.call.end();
      expect((await a.ended).code).toBe(Status.OK);
      expect((await b.ended).code).toBe(Status.OK);
    } finally {
      c.close();
    }
  });

  it('ends a stream sending faster than its rate beyond the burst with RESOURCE_EXHAUSTED', async () => {
    const c = client();
    try {
      const s = open(c, DEF.talk.path);
      for (let i = 0; i < 40; i++) s.call.write(Buffer.from([i]));
      const end = await s.ended;
      expect(end.code).toBe(Status.RESOURCE_EXHAUSTED);
      expect(end.details).toMatch(/messages a second/);
      // The burst was answered, nothing past the refusal.
      expect(s.answers()).toBeLessThanOrEqual(11);
    } finally {
      c.close();
    }
  });

  it('ends a stream at a message over the size limit with RESOURCE_EXHAUSTED', async () => {
    const c = client();
    try {
      const s = open(c, DEF.talk.path);
      s.call.write(Buffer.from([1]));
      s.call.write(Buffer.alloc(4096, 7));
      const end = await s.ended;
      expect(end.code).toBe(Status.RESOURCE_EXHAUSTED);
      expect(end.details).toMatch(/more than the 1024 bytes/);
    } finally {
      c.close();
    }
  });

  it('ends a quiet stream with DEADLINE_EXCEEDED', async () => {
    const c = client();
    try {
      const s = open(c, DEF.quiet.path);
      s.call.write(Buffer.from([1]));
      const end = await s.ended;
      expect(end.code).toBe(Status.DEADLINE_EXCEEDED);
      expect(end.details).toMatch(/no message on this stream/);
      expect(s.answers()).toBe(1);
    } finally {
      c.close();
    }
  });

  it('ends a stream whose answers are not read at the transport (RESOURCE_EXHAUSTED), having stopped reading its messages', async () => {
    // grpc-js clients read ahead into memory of their own; a bare HTTP/2 client that leaves its receive window
    // closed is what a peer that never reads looks like to the server.
    const session = http2.connect(`https://localhost:${server.port}`, {
      ca: clientTls.caCerts,
      cert: clientTls.cert,
      key: clientTls.key,
    });
    try {
      const before = observed.length;
      const stream = session.request({ ':method': 'POST', ':path': DEF.big.path, 'content-type': 'application/grpc', te: 'trailers' });
      stream.pause();
      stream.on('error', () => undefined);
      const frame = Buffer.from([0, 0, 0, 0, 1, 7]);
      for (let i = 0; i < 200; i++) stream.write(frame);
      await until(() => observed.length > before, 10_000, 'the stalled stream ended');
      expect(observed.at(-1)).toEqual({ method: DEF.big.path, code: 'RESOURCE_EXHAUSTED' });
      // Its status waits behind the unread answers: until the transport stream is gone it keeps its caller's slot.
      const c = client();
      try {
        const again = open(c, DEF.big.path);
        again.call.write(Buffer.from([1]));
        expect((await again.ended).details).toMatch(/open streams/);
        session.destroy();
        await new Promise((r) => setTimeout(r, 200));
        const after = open(c, DEF.big.path);
        after.call.write(Buffer.from([1]));
        await until(() => after.answers() === 1, 3000, 'an answer once the stalled stream is gone');
        after.call.end();
        expect((await after.ended).code).toBe(Status.OK);
      } finally {
        c.close();
      }
    } finally {
      session.destroy();
    }
  });

  it('ends an open stream at its next message once the trust in its CA is withdrawn (UNAUTHENTICATED)', async () => {
    const c = client();
    try {
      const s = open(c, DEF.talk.path);
      s.call.write(Buffer.from([1]));
      await until(() => s.answers() === 1, 3000, 'an answer');
      untrusted = true;
      s.call.write(Buffer.from([2]));
      const end = await s.ended;
      expect(end.code).toBe(Status.UNAUTHENTICATED);
      expect(s.answers()).toBe(1);
    } finally {
      untrusted = false;
      c.close();
    }
  });

  it('closed every session it opened', async () => {
    await until(() => closed === opened, 3000, 'every session closed');
  });
});
