// grpc.health.v1.Health in the reflected schema: a client that knows no schema lists it and calls
// Health/Check through reflection alone (`buf curl --protocol grpc --reflect`), like every other service;
// the described file is a valid descriptor whose methods are the ones the server serves.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createFileRegistry } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish } from '../../services/core/federation/bundle-source.js';
import { federationService } from '../../services/core/federation/federation-service.js';
import { parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { silentLogger } from '../../services/core/log.js';
import { DescriptorIndex, answerReflection, healthFile } from '../../services/core/rpc/reflection.js';
import { startServer, type RunningServer } from '../../services/core/rpc/server.js';
import { makeTestPki } from '../helpers/pki.js';

const run = promisify(execFile);
const BUF = join(import.meta.dirname, '../../node_modules/.bin/buf');

let server: RunningServer;
let dir: string;
let flags: string[];

beforeAll(async () => {
  const pki = await makeTestPki('plc.test');
  const s = await pki.issue('urn:fedlab:plc.test:authority:ma', { dns: ['localhost'], ip: ['127.0.0.1'] });
  const c = await pki.issue('urn:fedlab:plc.test:user:alice');
  dir = mkdtempSync(join(tmpdir(), 'fedlab-reflect-health-'));
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(join(dir, 'cert.pem'), c.certPem);
  writeFileSync(join(dir, 'key.pem'), c.keyPem, { mode: 0o600 });
  flags = [
    '--protocol',
    'grpc',
    '--reflect',
    '--cacert',
    join(dir, 'ca.pem'),
    '--cert',
    join(dir, 'cert.pem'),
    '--key',
    join(dir, 'key.pem'),
  ];
  const bundle = publish(
    await parseTrustBundle({
      v: 1,
      domain: 'plc.test',
      serial: 1,
      issued_at: new Date(0).toISOString(),
      ca_certs: [pki.caPem],
      authorities: [],
      revocation_version: 0,
    }),
  );
  server = await startServer({ port: 0, tls: { caCerts: pki.caPem, cert: s.certPem, key: s.keyPem }, log: silentLogger() }, [
    federationService({ domain: 'plc.test', current: async () => bundle }),
  ]);
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('reflection: grpc.health.v1.Health', () => {
  it('buf curl lists Health/Check and Health/Watch beside the API', async () => {
    const { stdout } = await run(BUF, ['curl', ...flags, '--list-methods', `https://localhost:${server.port}`], { timeout: 30_000 });
    const methods = stdout.split('\n');
    expect(methods).toContain('grpc.health.v1.Health/Check');
    expect(methods).toContain('grpc.health.v1.Health/Watch');
    expect(methods).toContain('fedlab.v1.Federation/GetBundle');
  });

  it('buf curl calls Health/Check through reflection: the server and each service are SERVING', async () => {
    const url = `https://localhost:${server.port}/grpc.health.v1.Health/Check`;
    const all = await run(BUF, ['curl', ...flags, '-d', '{}', url], { timeout: 30_000 });
    expect(JSON.parse(all.stdout)).toEqual({ status: 'SERVING' });
    const one = await run(BUF, ['curl', ...flags, '-d', '{"service":"fedlab.v1.Federation"}', url], { timeout: 30_000 });
    expect(JSON.parse(one.stdout)).toEqual({ status: 'SERVING' });
  });

  it('the described file is a valid descriptor found by its file name and by its symbols', () => {
    const registry = createFileRegistry(healthFile(), () => undefined);
    const svc = registry.getService('grpc.health.v1.Health');
    expect(svc?.methods.map((m) => `${m.name}:${m.methodKind}`)).toEqual(['Check:unary', 'Watch:server_streaming']);
    expect(registry.getMessage('grpc.health.v1.HealthCheckResponse')?.fields[0]?.enum?.values.map((v) => v.name)).toEqual([
      'UNKNOWN',
      'SERVING',
      'NOT_SERVING',
      'SERVICE_UNKNOWN',
    ]);
    const index = new DescriptorIndex(readFileSync(join(import.meta.dirname, '../../services/generated/fedlab.binpb')), [healthFile()]);
    expect(index.fileOfSymbol('grpc.health.v1.Health.Check')).toBe('grpc/health/v1/health.proto');
    expect(index.fileOfSymbol('.grpc.health.v1.HealthCheckRequest')).toBe('grpc/health/v1/health.proto');
    expect(index.fileWithDependencies('grpc/health/v1/health.proto')).toHaveLength(1);
    // A list_services request (field 7) names it.
    const answer = Buffer.from(answerReflection(index, ['grpc.health.v1.Health'], Uint8Array.of(0x3a, 0x00))).toString('latin1');
    expect(answer).toContain('grpc.health.v1.Health');
  });
});
