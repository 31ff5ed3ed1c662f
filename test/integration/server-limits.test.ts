// Bounded servers: every limit of services/core/rpc/server-limits.ts tried against a real server over
// mutual TLS — oversized and undecodable requests, an oversized answer, open streams per caller, and
// concurrent streams per connection — each answered with its documented code and nothing leaked.
import { Client, credentials as grpcCredentials, status as Status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineService, type ServiceRegistration } from '../../services/core/rpc/adapter.js';
import { createClient } from '../../services/core/rpc/client.js';
import { startServer, type RunningServer, type TlsMaterial } from '../../services/core/rpc/server.js';
import { FederationService } from '../../services/generated/fedlab/v1/federation.js';
import { SliceAuthorityService, WatchSliceRequest, WatchSliceResponse } from '../../services/generated/fedlab/v1/slice_authority.js';
import { makeTestPki } from '../helpers/pki.js';
import { silentLogger } from '../../services/core/log.js';
import { waitFor } from '../helpers/servers.js';

let serverTls: TlsMaterial;
let clientTls: TlsMaterial;
let server: RunningServer;
let watching = 0;
const WATCH = WatchSliceRequest.fromPartial({ sliceUrn: 'urn:fedlab:plc.test:slice:x', follow: true });
const held: (() => void)[] = [];

function services(): ServiceRegistration[] {
  const federation = defineService(FederationService, {
    async getBundle(request, ctx) {
      if (request.domain === 'hold.test') {
        // Held until released, so a test can fill a connection's streams.
        await new Promise<void>((resolve) => {
          held.push(resolve);
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      return { domain: request.domain, serial: 1, fingerprint: '', bundleJson: request.domain === 'big.test' ? 'x'.repeat(4096) : '{}' };
    },
  });
  // Only WatchSlice of the slice authority's service: a stream that stays open until cancelled.
  const watch: ServiceRegistration = {
    name: 'fedlab.v1.SliceAuthority',
    definition: { watchSlice: SliceAuthorityService.watchSlice },
    handlers: {
      watchSlice: async function* (_req: never, ctx: { signal: AbortSignal }): AsyncGenerator<WatchSliceResponse> {
        watching++;
        try {
          yield WatchSliceResponse.fromPartial({});
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        } finally {
          watching--;
        }
      } as never,
    },
  };
  return [federation, watch];
}

beforeAll(async () => {
  const pki = await makeTestPki('plc.test');
  const s = await pki.issue('urn:fedlab:plc.test:authority:sa', { dns: ['localhost'], ip: ['127.0.0.1'] });
  const c = await pki.issue('urn:fedlab:plc.test:sp:acme');
  serverTls = { caCerts: pki.caPem, cert: s.certPem, key: s.keyPem };
  clientTls = { caCerts: pki.caPem, cert: c.certPem, key: c.keyPem };
  server = await startServer(
    {
      port: 0,
      tls: serverTls,
      log: silentLogger(),
      shutdownGraceMs: 500,
      limits: { maxReceiveBytes: 64 * 1024, maxSendBytes: 2048, maxStreamsPerCaller: 2, maxConcurrentStreams: 2 },
    },
    services(),
  );
});

afterAll(async () => {
  for (const release of held) release();
  await server?.stop();
});

function rawClient(): Client {
  return new Client(
    `localhost:${server.port}`,
    grpcCredentials.createSsl(Buffer.from(clientTls.caCerts), Buffer.from(clientTls.key), Buffer.from(clientTls.cert)),
  );
}

describe('bounded servers', () => {
  it('refuses a request over the size limit with RESOURCE_EXHAUSTED naming the limit', async () => {
    const client = createClient(FederationService, { address: `localhost:${server.port}`, tls: clientTls });
    try {
      await expect(client.getBundle({ domain: 'a'.repeat(100 * 1024) })).rejects.toMatchObject({
        code: Status.RESOURCE_EXHAUSTED,
        details: expect.stringMatching(/more than the 65536 bytes/),
      });
      expect((await client.getBundle({ domain: 'ok.test' })).domain).toBe('ok.test');
    } finally {
      client.close();
    }
  });

  it('answers bytes that are not the request message with INVALID_ARGUMENT, not INTERNAL', async () => {
    const raw = rawClient();
    try {
      for (const bytes of [Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0x0a, 0x7f, 0x41])]) {
        const err = await new Promise<ServiceError>((resolve) => {
          raw.makeUnaryRequest(
            FederationService.getBundle.path,
            (b: Buffer) => b,
            (b: Buffer) => b,
            bytes,
            (e) => resolve(e as ServiceError),
          );
        });
        expect(err.code).toBe(Status.INVALID_ARGUMENT);
        expect(err.details).toMatch(/not a valid GetBundle request message/);
      }
    } finally {
      raw.close();
    }
  });

  it('refuses an answer over the send limit with RESOURCE_EXHAUSTED', async () => {
    const client = createClient(FederationService, { address: `localhost:${server.port}`, tls: clientTls });
    try {
      await expect(client.getBundle({ domain: 'big.test' })).rejects.toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
    } finally {
      client.close();
    }
  });

  it('caps open streams per caller and frees the slot when one closes', async () => {
    const clients = [0, 1, 2].map(() =>
      createClient(SliceAuthorityService, { address: `localhost:${server.port}`, tls: clientTls, deadlineMs: 20_000 }),
    );
    const controllers = [0, 1].map(() => new AbortController());
    try {
      const open = controllers.map((ac, i) => (clients[i] as (typeof clients)[0]).watchSlice(WATCH, { signal: ac.signal }));
      // A cancelled stream reports CANCELLED to whoever listens; these tests only cancel.
      for (const stream of open) (stream as unknown as NodeJS.EventEmitter).on('error', () => undefined);
      for (const stream of open) await stream[Symbol.asyncIterator]().next();
      expect(watching).toBe(2);
      const third = (clients[2] as (typeof clients)[0]).watchSlice(WATCH);
      await expect(third[Symbol.asyncIterator]().next()).rejects.toMatchObject({
        code: Status.RESOURCE_EXHAUSTED,
        details: expect.stringMatching(/2 per caller/),
      });
      controllers[0]?.abort();
      await waitFor(() => watching === 1, 5_000, 'the cancelled stream to end');
      const again = (clients[2] as (typeof clients)[0]).watchSlice(WATCH, { signal: controllers[1]?.signal });
      (again as unknown as NodeJS.EventEmitter).on('error', () => undefined);
      await again[Symbol.asyncIterator]().next();
      expect(watching).toBe(2);
    } finally {
      for (const ac of controllers) ac.abort();
      for (const c of clients) c.close();
    }
    await waitFor(() => watching === 0, 5_000, 'every stream to end');
  });

  it('holds a connection to its concurrent-stream limit: a third call waits until one ends', async () => {
    const client = createClient(FederationService, { address: `localhost:${server.port}`, tls: clientTls, deadlineMs: 20_000 });
    try {
      const first = client.getBundle({ domain: 'hold.test' });
      const second = client.getBundle({ domain: 'hold.test' });
      await waitFor(() => held.length === 2, 5_000, 'two calls held');
      let thirdDone = false;
      const third = client.getBundle({ domain: 'ok.test' }).then((r) => {
        thirdDone = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(thirdDone).toBe(false);
      held.shift()?.();
      expect((await third).domain).toBe('ok.test');
      held.shift()?.();
      await Promise.all([first, second]);
    } finally {
      client.close();
    }
  });
});
