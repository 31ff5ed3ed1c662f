// A client that knows no schema reaches the server through reflection alone: `buf curl` lists the
// services and calls Federation.GetBundle, and a raw reflection client describes a message whose
// fields come from another file.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, credentials as grpcCredentials, Metadata } from '@grpc/grpc-js';
import { fromBinary } from '@bufbuild/protobuf';
import { createFileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../services/core/rpc/server.js';
import { federationService } from '../../services/core/federation/federation-service.js';
import { publish } from '../../services/core/federation/bundle-source.js';
import { parseTrustBundle } from '../../services/core/identity/trust-bundle.js';
import { silentLogger } from '../../services/core/log.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';

const run = promisify(execFile);
const BUF = join(import.meta.dirname, '../../node_modules/.bin/buf');

let pki: TestPki;
let server: RunningServer;
let dir: string;
let flags: string[];

beforeAll(async () => {
  pki = await makeTestPki('plc.test');
  const s = await pki.issue('urn:fedlab:plc.test:authority:ma', { dns: ['localhost'], ip: ['127.0.0.1'] });
  const c = await pki.issue('urn:fedlab:plc.test:user:alice');
  dir = mkdtempSync(join(tmpdir(), 'fedlab-reflect-'));
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(join(dir, 'cert.pem'), c.certPem);
  writeFileSync(join(dir, 'key.pem'), c.keyPem, { mode: 0o600 });
  flags = ['--protocol', 'grpc', '--cacert', join(dir, 'ca.pem'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem')];
  const bundle = publish(
    await parseTrustBundle({
      v: 1,
      domain: 'plc.test',
      serial: 3,
      issued_at: new Date(0).toISOString(),
      ca_certs: [pki.caPem],
      authorities: [],
      revocation_version: 0,
    }),
  );
  server = await startServer({ port: 0, tls: { caCerts: pki.caPem, cert: s.certPem, key: s.keyPem }, log: silentLogger() }, [
    federationService({ domain: 'plc.test', current: async () => bundle }),
  ]);
  clientTls = { ca: pki.caPem, cert: c.certPem, key: c.keyPem };
});

let clientTls: { ca: string; cert: string; key: string };

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('server reflection', () => {
  it('buf curl lists the services and methods with no local schema', async () => {
    const { stdout } = await run(BUF, ['curl', ...flags, '--list-methods', `https://localhost:${server.port}`], { timeout: 30_000 });
    expect(stdout.split('\n')).toContain('fedlab.v1.Federation/GetBundle');
  });

  it('buf curl calls Federation.GetBundle through reflection', async () => {
    const { stdout } = await run(BUF, ['curl', ...flags, '-d', '{}', `https://localhost:${server.port}/fedlab.v1.Federation/GetBundle`], {
      timeout: 30_000,
    });
    const res = JSON.parse(stdout) as { domain: string; serial: string; fingerprint: string };
    expect(res.domain).toBe('plc.test');
    expect(String(res.serial)).toBe('3');
    expect(res.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('describes a message that imports another file, with every file it needs', async () => {
    // Pick, from the API itself, a message with a field whose type is defined in another file.
    const set = fromBinary(
      FileDescriptorSetSchema,
      (await import('node:fs')).readFileSync(join(import.meta.dirname, '../../services/generated/fedlab.binpb')),
    );
    const target = findCrossFileMessage(set.file);
    expect(target, 'the API should have a message using a type from another file').toBeDefined();
    const files = await reflect(server.port, clientTls, target!.message);
    // The server answers with the requested file first and its dependencies after it.
    expect(files[0]?.messageType.some((m) => `${files[0]?.package}.${m.name}` === target!.message)).toBe(true);
    const byName = new Map(files.map((f) => [f.name, f]));
    const registry = createFileRegistry(files[0]!, (name) => byName.get(name));
    const desc = registry.getMessage(target!.message);
    expect(desc).toBeDefined();
    const field = desc!.fields.find((f) => f.name === target!.field);
    expect(field?.message?.typeName ?? field?.enum?.typeName).toBe(target!.fieldType);
    expect(field?.message?.file.name ?? field?.enum?.file.name).not.toBe(desc!.file.name);
  });

  it('answers NOT_FOUND inside the stream for an unknown symbol', async () => {
    await expect(reflect(server.port, clientTls, 'fedlab.v1.NoSuchThing')).rejects.toThrow(/NOT_FOUND|not found/);
  });
});

/** Finds a fedlab message with a field whose type lives in another file. */
function findCrossFileMessage(files: FileDescriptorProto[]): { message: string; field: string; fieldType: string } | undefined {
  const fileOf = new Map<string, string>();
  for (const f of files) for (const m of f.messageType) fileOf.set(`${f.package}.${m.name}`, f.name);
  for (const f of files) for (const e of f.enumType) fileOf.set(`${f.package}.${e.name}`, f.name);
  for (const f of files) {
    if (!f.package.startsWith('fedlab.')) continue;
    for (const m of f.messageType) {
      for (const fld of m.field) {
        const type = fld.typeName.replace(/^\./, '');
        const other = fileOf.get(type);
        if (type.startsWith('fedlab.') && other && other !== f.name)
          return { message: `${f.package}.${m.name}`, field: fld.name, fieldType: type };
      }
    }
  }
  return undefined;
}

/** A minimal grpc.reflection.v1 client: asks for the file containing `symbol`. */
async function reflect(port: number, tls: { ca: string; cert: string; key: string }, symbol: string): Promise<FileDescriptorProto[]> {
  const client = new Client(
    `localhost:${port}`,
    grpcCredentials.createSsl(Buffer.from(tls.ca), Buffer.from(tls.key), Buffer.from(tls.cert)),
  );
  try {
    const call = client.makeBidiStreamRequest(
      '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
      (b: Buffer) => b,
      (b: Buffer) => b,
      new Metadata(),
      { deadline: Date.now() + 10_000 },
    );
    const req = new BinaryWriter().tag(4, WireType.LengthDelimited).string(symbol).finish();
    const response = new Promise<Buffer>((resolve, reject) => {
      call.once('data', (b: Buffer) => resolve(b));
      call.once('error', reject);
    });
    call.write(Buffer.from(req));
    call.end();
    const bytes = await response;
    const r = new BinaryReader(bytes);
    const files: FileDescriptorProto[] = [];
    while (r.pos < r.len) {
      const [field, wire] = r.tag();
      if (field === 4) {
        const sub = new BinaryReader(r.bytes());
        while (sub.pos < sub.len) {
          const [f, w] = sub.tag();
          if (f === 1) files.push(fromBinary(FileDescriptorProtoSchema, sub.bytes()));
          else sub.skip(w);
        }
      } else if (field === 7) {
        const sub = new BinaryReader(r.bytes());
        let code = 0;
        let message = '';
        while (sub.pos < sub.len) {
          const [f, w] = sub.tag();
          if (f === 1) code = sub.int32();
          else if (f === 2) message = sub.string();
          else sub.skip(w);
        }
        throw new Error(`reflection error ${code === 5 ? 'NOT_FOUND' : code}: ${message}`);
      } else r.skip(wire);
    }
    return files;
  } finally {
    client.close();
  }
}
