// The RPC core over real mutual TLS on port 0: health, Federation.GetBundle, refusals, error mapping,
// credential header limits, deadlines, graceful stop, and the per-call log lines.
import { credentials as grpcCredentials, Client, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationService } from '../../services/generated/fedlab/v1/federation.js';
import { defineService } from '../../services/core/rpc/adapter.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { startServer, type RunningServer, type TlsMaterial } from '../../services/core/rpc/server.js';
import { federationService } from '../../services/core/federation/federation-service.js';
import { publish } from '../../services/core/federation/bundle-source.js';
import { PermissionDeniedError, ResourceExhaustedError } from '../../services/core/errors.js';
import { INTERNAL_MESSAGE } from '../../services/core/rpc/status.js';
import { parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { describePublicKey } from '../../services/core/identity/keys.js';
import { createPublicKey } from 'node:crypto';
import http2 from 'node:http2';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { capturingLogger } from '../helpers/servers.js';

const DOMAIN = 'plc.test';

let pki: TestPki;
let otherPki: TestPki;
let serverTls: TlsMaterial;
let clientTls: TlsMaterial;

beforeAll(async () => {
  pki = await makeTestPki(DOMAIN);
  otherPki = await makeTestPki('evil.test');
  const server = await pki.issue(`urn:fedlab:${DOMAIN}:authority:ma`, { dns: ['localhost'], ip: ['127.0.0.1'] });
  const client = await pki.issue(`urn:fedlab:${DOMAIN}:sp:acme`);
  serverTls = { caCerts: pki.caPem, cert: server.certPem, key: server.keyPem };
  clientTls = { caCerts: pki.caPem, cert: client.certPem, key: client.keyPem };
});

async function bundleFor(p: TestPki) {
  const ma = await describePublicKey(createPublicKey(p.caKeyPem));
  return publish(
    await parseTrustBundle({
      v: 1,
      domain: p.domain,
      serial: 1,
      issued_at: new Date(0).toISOString(),
      ca_certs: [p.caPem],
      authorities: [{ urn: `urn:fedlab:${p.domain}:authority:ma`, jwk: ma.jwk, kid: ma.thumbprint }],
      revocation_version: 0,
    }),
  );
}

/** A Federation implementation whose behaviour is chosen by the requested domain, to exercise the adapter. */
function trickyFederation(gate: { release?: () => void; started?: () => void }) {
  return defineService(FederationService, {
    async getBundle(request, ctx) {
      switch (request.domain) {
        case 'denied.test':
          throw new PermissionDeniedError(
            'the leaf does not grant slice.read on this slice; ask the slice authority for a credential that does',
            { link: 2, rule: 'privilege' },
          );
        case 'full.test':
          throw new ResourceExhaustedError('node n1 has 100 cpu_millis left; ask for less');
        case 'boom.test':
          throw new Error('secret internal detail /var/lib/fedlab');
        case 'slow.test':
          gate.started?.();
          await new Promise<void>((resolve) => {
            gate.release = resolve;
          });
          return { domain: 'slow.test', serial: 7, fingerprint: '', bundleJson: '{}' };
        case 'chain.test':
          return { domain: ctx.peer.urn, serial: ctx.chain.length, fingerprint: ctx.peer.thumbprint, bundleJson: ctx.chain.join('\n') };
        case 'wait.test':
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
          return { domain: 'wait.test', serial: 0, fingerprint: '', bundleJson: '' };
        default:
          throw new Error('unexpected');
      }
    },
  });
}

describe('RPC core over mutual TLS', () => {
  let server: RunningServer;
  let tricky: RunningServer;
  let client: PromiseClient<typeof FederationService>;
  let trickyClient: PromiseClient<typeof FederationService>;
  const gate: { release?: () => void; started?: () => void } = {};
  const logs = capturingLogger();

  beforeAll(async () => {
    server = await startServer({ port: 0, tls: serverTls, log: logs.log }, [
      federationService({ domain: DOMAIN, current: async () => bundleFor(pki) }),
    ]);
    tricky = await startServer({ port: 0, tls: serverTls, log: logs.log, shutdownGraceMs: 5000 }, [trickyFederation(gate)]);
    client = createClient(FederationService, { address: `localhost:${server.port}`, tls: clientTls });
    trickyClient = createClient(FederationService, { address: `127.0.0.1:${tricky.port}`, tls: clientTls, deadlineMs: 5000 });
  });

  afterAll(async () => {
    client?.close();
    trickyClient?.close();
    await server?.stop();
    await tricky?.stop();
  });

  it('answers health checks with SERVING', async () => {
    const health = createClient(healthService as never, { address: `localhost:${server.port}`, tls: clientTls }) as unknown as {
      Check(req: { service: string }): Promise<{ status: string | number }>;
      close(): void;
    };
    try {
      const overall = await health.Check({ service: '' });
      expect(overall.status).toBe('SERVING');
      const fed = await health.Check({ service: 'fedlab.v1.Federation' });
      expect(fed.status).toBe('SERVING');
    } finally {
      health.close();
    }
  });

  it('serves Federation.GetBundle with the canonical bundle and its fingerprint', async () => {
    const expected = await bundleFor(pki);
    const res = await client.getBundle({ domain: '' });
    expect(res.domain).toBe(DOMAIN);
    expect(res.serial).toBe(1);
    expect(res.bundleJson).toBe(expected.json);
    expect(res.fingerprint).toBe(expected.fingerprint);
    const same = await client.getBundle({ domain: DOMAIN });
    expect(same.fingerprint).toBe(expected.fingerprint);
  });

  it('answers NOT_FOUND for another domain and INVALID_ARGUMENT for a malformed one', async () => {
    await expect(client.getBundle({ domain: 'other.test' })).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(client.getBundle({ domain: 'Not A Domain' })).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
  });

  it('refuses a client without a certificate', async () => {
    const raw = new Client(`localhost:${server.port}`, grpcCredentials.createSsl(Buffer.from(pki.caPem)));
    try {
      const err = await new Promise<ServiceError>((resolve) => {
        raw.makeUnaryRequest(
          FederationService.getBundle.path,
          FederationService.getBundle.requestSerialize,
          FederationService.getBundle.responseDeserialize,
          { domain: '' },
          new Metadata(),
          { deadline: Date.now() + 5000 },
          (e) => resolve(e as ServiceError),
        );
      });
      expect(err).toBeTruthy();
      expect(err.code).toBe(Status.UNAVAILABLE);
    } finally {
      raw.close();
    }
  });

  it('refuses a client whose certificate is from another CA', async () => {
    const evil = await otherPki.issue('urn:fedlab:evil.test:sp:mallory');
    const c = createClient(FederationService, {
      address: `localhost:${server.port}`,
      // The attacker trusts our CA for the server, but its own certificate chains to another CA.
      tls: { caCerts: pki.caPem, cert: evil.certPem, key: evil.keyPem },
    });
    try {
      await expect(c.getBundle({ domain: '' })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    } finally {
      c.close();
    }
  });

  it('answers UNIMPLEMENTED for an unknown method', async () => {
    const err = await new Promise<ServiceError>((resolve) => {
      client.raw.makeUnaryRequest(
        '/fedlab.v1.Federation/NoSuchMethod',
        FederationService.getBundle.requestSerialize,
        FederationService.getBundle.responseDeserialize,
        { domain: '' },
        new Metadata(),
        { deadline: Date.now() + 5000 },
        (e) => resolve(e as ServiceError),
      );
    });
    expect(err.code).toBe(Status.UNIMPLEMENTED);
  });

  it('maps a domain error to its code and keeps its message and details', async () => {
    const err = (await trickyClient.getBundle({ domain: 'denied.test' }).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(Status.PERMISSION_DENIED);
    expect(err.details).toMatch(/does not grant slice.read/);
    expect(err.metadata.get('fedlab-link')).toEqual(['2']);
    expect(err.metadata.get('fedlab-rule')).toEqual(['privilege']);
    await expect(trickyClient.getBundle({ domain: 'full.test' })).rejects.toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
  });

  it('answers INTERNAL without the message for an unexpected error, and logs the stack', async () => {
    const err = (await trickyClient.getBundle({ domain: 'boom.test' }).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(Status.INTERNAL);
    expect(err.details).toBe(INTERNAL_MESSAGE);
    expect(err.details).not.toMatch(/secret/);
    const logged = logs.lines().find((l) => l.msg === 'unexpected error in handler');
    expect(JSON.stringify(logged)).toMatch(/secret internal detail/);
    expect((logged?.err as { stack?: string })?.stack).toMatch(/Error: secret/);
  });

  it('identifies the caller from its certificate and reads the credential chain from metadata', async () => {
    const res = await trickyClient.getBundle({ domain: 'chain.test' }, { chain: ['a.b.c', 'd.e.f'] });
    expect(res.domain).toBe(`urn:fedlab:${DOMAIN}:sp:acme`);
    expect(res.serial).toBe(2);
    expect(res.bundleJson).toBe('a.b.c\nd.e.f');
    expect(res.fingerprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a chain of more than 8 links before any other work', async () => {
    const chain = Array.from({ length: 9 }, () => 'x.y.z');
    const err = (await trickyClient.getBundle({ domain: 'chain.test' }, { chain }).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(Status.UNAUTHENTICATED);
    expect(err.details).toMatch(/9 links; at most 8/);
  });

  it('refuses a chain of more than 16 KiB', async () => {
    const chain = [`${'a'.repeat(9000)}.b.c`, `${'a'.repeat(9000)}.b.c`];
    const err = (await trickyClient.getBundle({ domain: 'chain.test' }, { chain }).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(Status.UNAUTHENTICATED);
    expect(err.details).toMatch(/larger than 16384 bytes/);
  });

  it('gives every call a deadline and aborts the handler signal when it passes', async () => {
    const started = Date.now();
    await expect(trickyClient.getBundle({ domain: 'wait.test' }, { deadlineMs: 300 })).rejects.toMatchObject({
      code: Status.DEADLINE_EXCEEDED,
    });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('cancels a call whose abort signal fired before it was made (not left to run until its deadline)', async () => {
    const aborted = AbortSignal.abort();
    // wait.test answers only when the server-side signal aborts: without the client's cancellation
    // this call would end in DEADLINE_EXCEEDED after 5 s.
    await expect(trickyClient.getBundle({ domain: 'wait.test' }, { signal: aborted })).rejects.toMatchObject({ code: Status.CANCELLED });
    // And a live signal aborted during the call cancels it too.
    const live = new AbortController();
    const pending = trickyClient.getBundle({ domain: 'wait.test' }, { signal: live.signal });
    setTimeout(() => live.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: Status.CANCELLED });
  });

  it('logs a line for every failed call with method, caller, code and duration; a successful unary call at debug only', async () => {
    await client.getBundle({ domain: '' });
    const calls = logs.lines().filter((l) => l.msg === 'rpc' && l.method === '/fedlab.v1.Federation/GetBundle');
    // The logger is at info: a call that succeeded is counted in the metrics, not logged.
    expect(calls.some((l) => l.code === 'OK')).toBe(false);
    const denied = calls.find((l) => l.code === 'PERMISSION_DENIED');
    expect(denied).toMatchObject({ caller: `urn:fedlab:${DOMAIN}:sp:acme`, level: 30 });
    expect(typeof denied?.ms).toBe('number');
    // Credentials never reach the logs.
    expect(JSON.stringify(logs.lines())).not.toMatch(/a\.b\.c/);
  });

  it('logs a successful unary call at debug when the logger is at debug', async () => {
    const debug = capturingLogger('debug');
    const s = await startServer({ port: 0, tls: serverTls, log: debug.log }, [
      federationService({ domain: DOMAIN, current: async () => bundleFor(pki) }),
    ]);
    const c = createClient(FederationService, { address: `localhost:${s.port}`, tls: clientTls });
    try {
      await c.getBundle({ domain: '' });
      const ok = debug.lines().find((l) => l.msg === 'rpc' && l.code === 'OK');
      expect(ok).toMatchObject({ method: '/fedlab.v1.Federation/GetBundle', caller: `urn:fedlab:${DOMAIN}:sp:acme`, level: 20 });
      expect(typeof ok?.ms).toBe('number');
    } finally {
      c.close();
      await s.stop();
    }
  });

  it('stop() lets a call in flight finish and refuses new ones', async () => {
    const started = new Promise<void>((r) => {
      gate.started = r;
    });
    const inFlight = trickyClient.getBundle({ domain: 'slow.test' });
    await started;
    const stopped = tricky.stop();
    // The server no longer takes calls...
    await expect(trickyClient.getBundle({ domain: 'full.test' }, { deadlineMs: 1000 })).rejects.toBeTruthy();
    // ...but the one in flight completes normally.
    gate.release?.();
    await expect(inFlight).resolves.toMatchObject({ domain: 'slow.test', serial: 7 });
    await stopped;
  });
});

describe('a forced stop', () => {
  it('ends every connection when the grace runs out, also one whose stream never finishes', async () => {
    const server = await startServer({ port: 0, tls: serverTls, log: capturingLogger().log, shutdownGraceMs: 200 }, [
      federationService({ domain: DOMAIN, current: async () => bundleFor(pki) }),
    ]);
    // A raw HTTP/2 client that opens a call and never sends its message: the stream stays open, so a
    // graceful shutdown cannot finish and the grace runs out.
    const session = http2.connect(`https://localhost:${server.port}`, {
      ca: clientTls.caCerts,
      cert: clientTls.cert,
      key: clientTls.key,
    });
    session.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const stream = session.request({
      ':method': 'POST',
      ':path': '/fedlab.v1.Federation/GetBundle',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => undefined);
    await new Promise<void>((resolve) => stream.once('response', () => resolve()).once('ready', () => resolve()));
    await server.stop();
    // grpc-js's forceShutdown alone left such a connection open (and reaching the stopped server's handlers).
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 3000))]);
    session.destroy();
    expect(outcome).toBe('closed');
  });
});
