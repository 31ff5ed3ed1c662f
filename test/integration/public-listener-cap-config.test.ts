// The per-address connection cap of the public listeners is a config key (`server.max_connections_per_address`,
// issue 15): the config schema takes it (1 to 10,000; anything else is refused naming the key), and a public
// listener started with the cap a config sets holds that many connections from one address and closes the
// next at once, while another address still gets in; a management authority started with the key holds its
// enrolment port to it. Without the key the cap is the default, 64.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commonConfigSchema, compileConfig } from '../../services/core/config.js';
import { silentLogger } from '../../services/core/log.js';
import {
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  maxConnectionsPerAddressOf,
  startPublicListener,
  type PublicListener,
} from '../../services/core/rpc/public-listener.js';
import { FederationService, type GetBundleResponse } from '../../services/generated/fedlab/v1/federation.js';
import { startSite } from '../helpers/ma-harness.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
let dir: string;
const held: Socket[] = [];

beforeAll(async () => {
  pki = await makeTestPki('plc.test');
  dir = mkdtempSync(join(tmpdir(), 'fedlab-cap-config-'));
});

afterAll(async () => {
  for (const s of held.splice(0)) s.destroy();
  rmSync(dir, { recursive: true, force: true });
  await pki?.cleanup();
});

/** Compiles a config with `server` as its server section. */
function compile(server: Record<string, unknown> | undefined) {
  const file = join(dir, `svc-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      role: 'ma',
      urn: 'urn:fedlab:plc.test:authority:ma',
      listen: { host: '127.0.0.1', port: 0 },
      tls: { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' },
      trust_bundle: 'bundle.json',
      data_dir: 'data',
      ...(server ? { server } : {}),
    }),
  );
  return compileConfig(commonConfigSchema.loose(), { file, env: {} });
}

/** A TCP connection from `from`: 'open' if it is still open after a moment, 'closed' if the listener closed it. */
function tcpFrom(port: number, from: string): Promise<'open' | 'closed'> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve('closed'));
    socket.once('connect', () => {
      held.push(socket);
      setTimeout(() => resolve(socket.destroyed ? 'closed' : 'open'), 300);
    });
  });
}

describe('server.max_connections_per_address', () => {
  it('is read from the server section, and is the default without it', () => {
    expect(maxConnectionsPerAddressOf(compile({ max_connections_per_address: 3 }).server)).toBe(3);
    expect(maxConnectionsPerAddressOf(compile(undefined).server)).toBe(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
    expect(maxConnectionsPerAddressOf(compile({ max_receive_bytes: 8192 }).server)).toBe(64);
  });

  it('refuses a cap that is not a whole number from 1 to 10,000, naming the key', () => {
    for (const bad of [0, -1, 2.5, 10_001, '8']) {
      expect(() => compile({ max_connections_per_address: bad }), String(bad)).toThrow(/max_connections_per_address/);
    }
  });

  it('a public listener started with it holds that many connections per address and refuses the next', async () => {
    const cap = maxConnectionsPerAddressOf(compile({ max_connections_per_address: 3 }).server);
    const server = await pki.issue('urn:fedlab:plc.test:authority:ma', { dns: ['localhost'], ip: ['127.0.0.1'] });
    const listener: PublicListener = await startPublicListener({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: server.certPem, key: server.keyPem },
      log: silentLogger(),
      setting: 'federation.bundle_listen',
      name: 'bundle',
      methods: {
        getBundle: {
          definition: FederationService.getBundle,
          originalName: 'GetBundle',
          handle: async (): Promise<GetBundleResponse> => ({ domain: 'plc.test', serial: 1, fingerprint: '', bundleJson: '{}' }),
        },
      },
      maxConnectionsPerAddress: cap,
    });
    try {
      const first = await Promise.all([1, 2, 3].map(() => tcpFrom(listener.port, '127.0.0.1')));
      expect(first).toEqual(['open', 'open', 'open']);
      expect(await tcpFrom(listener.port, '127.0.0.1')).toBe('closed');
      expect(await tcpFrom(listener.port, '127.0.0.2')).toBe('open');
    } finally {
      for (const s of held.splice(0)) s.destroy();
      await listener.stop();
    }
  });
});

describe('a management authority', () => {
  it("caps its enrolment port at the config's server.max_connections_per_address", async () => {
    const site = await startSite({ config: { server: { max_connections_per_address: 2 } } });
    try {
      const port = Number(site.enrolAddress.split(':')[1]);
      const first = await Promise.all([1, 2].map(() => tcpFrom(port, '127.0.0.1')));
      expect(first).toEqual(['open', 'open']);
      expect(await tcpFrom(port, '127.0.0.1')).toBe('closed');
      expect(await tcpFrom(port, '127.0.0.2')).toBe('open');
    } finally {
      for (const s of held.splice(0)) s.destroy();
      await site.stop();
    }
  });
});
