/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), served from the
 * descriptor set that `buf build` writes. We serve it ourselves rather than
 * through @grpc/reflection because its 1.0.x releases mishandle files that
 * import other files and well-known types; the descriptor set already holds
 * every file exactly as compiled, with its dependencies. The health service
 * (grpc.health.v1, served by grpc-health-check on every server) is not in that
 * set: its file is described here, so clients reach it by reflection too.
 */
import { readFileSync } from 'node:fs';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorSetSchema,
  FileDescriptorProtoSchema,
  type FileDescriptorProto,
  type DescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { Server, ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';

/** Index of a descriptor set: files by name, and which file defines each symbol. */
export class DescriptorIndex {
  private readonly files = new Map<string, { proto: FileDescriptorProto; bytes: Uint8Array }>();
  private readonly symbols = new Map<string, string>();
  private readonly extensionsByType = new Map<string, { number: number; file: string }[]>();
  /** Fully-qualified names of the services the descriptor set defines. */
  readonly services: string[] = [];

  /** `extra`: files to serve beside the set's (e.g. {@link healthFile}). */
  constructor(descriptorSet: Uint8Array, extra: readonly FileDescriptorProto[] = []) {
    const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
    for (const file of [...set.file, ...extra]) {
      this.files.set(file.name, { proto: file, bytes: toBinary(FileDescriptorProtoSchema, file) });
      const pkg = file.package ? `${file.package}.` : '';
      for (const svc of file.service) {
        const full = `${pkg}${svc.name}`;
        this.services.push(full);
        this.symbols.set(full, file.name);
        for (const m of svc.method) this.symbols.set(`${full}.${m.name}`, file.name);
      }
      for (const e of file.enumType) this.symbols.set(`${pkg}${e.name}`, file.name);
      for (const m of file.messageType) this.indexMessage(m, pkg, file.name);
      for (const x of file.extension) this.addExtension(x.extendee, x.number, file.name, `${pkg}${x.name}`);
    }
  }

  private indexMessage(m: DescriptorProto, prefix: string, fileName: string): void {
    const full = `${prefix}${m.name}`;
    this.symbols.set(full, fileName);
    for (const f of m.field) this.symbols.set(`${full}.${f.name}`, fileName);
    for (const e of m.enumType) this.symbols.set(`${full}.${e.name}`, fileName);
    for (const n of m.nestedType) this.indexMessage(n, `${full}.`, fileName);
    for (const x of m.extension) this.addExtension(x.extendee, x.number, fileName, `${full}.${x.name}`);
  }

  private addExtension(extendee: string, number: number, fileName: string, name: string): void {
    const type = extendee.replace(/^\./, '');
    const list = this.extensionsByType.get(type) ?? [];
    list.push({ number, file: fileName });
    this.extensionsByType.set(type, list);
    this.symbols.set(name, fileName);
  }

  /** The serialized file and every file it depends on, transitively (dependencies first). */
  fileWithDependencies(name: string): Uint8Array[] | undefined {
    if (!this.files.has(name)) return undefined;
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (n: string): void => {
      if (seen.has(n)) return;
      seen.add(n);
      const f = this.files.get(n);
      if (!f) return;
      for (const dep of f.proto.dependency) visit(dep);
      out.push(f.bytes);
    };
    visit(name);
    // Clients expect the requested file first.
    const last = out.pop() as Uint8Array;
    return [last, ...out];
  }

  fileOfSymbol(symbol: string): string | undefined {
    return this.symbols.get(symbol.replace(/^\./, ''));
  }

  fileOfExtension(type: string, number: number): string | undefined {
    return this.extensionsByType.get(type)?.find((x) => x.number === number)?.file;
  }

  extensionNumbers(type: string): number[] | undefined {
    if (!this.symbols.has(type)) return undefined;
    return (this.extensionsByType.get(type) ?? []).map((x) => x.number);
  }
}

interface ParsedRequest {
  host: string;
  kind:
    | 'file_by_filename'
    | 'file_containing_symbol'
    | 'file_containing_extension'
    | 'all_extension_numbers_of_type'
    | 'list_services'
    | 'none';
  value: string;
  extensionNumber: number;
}

function parseRequest(bytes: Uint8Array): ParsedRequest {
  const r = new BinaryReader(bytes);
  const out: ParsedRequest = { host: '', kind: 'none', value: '', extensionNumber: 0 };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (wire !== WireType.LengthDelimited) {
      r.skip(wire);
      continue;
    }
    switch (field) {
      case 1:
        out.host = r.string();
        break;
      case 3:
        out.kind = 'file_by_filename';
        out.value = r.string();
        break;
      case 4:
        out.kind = 'file_containing_symbol';
        out.value = r.string();
        break;
      case 5: {
        out.kind = 'file_containing_extension';
        const sub = new BinaryReader(r.bytes());
        while (sub.pos < sub.len) {
          const [f, w] = sub.tag();
          if (f === 1 && w === WireType.LengthDelimited) out.value = sub.string();
          else if (f === 2 && w === WireType.Varint) out.extensionNumber = sub.int32();
          else sub.skip(w);
        }
        break;
      }
      case 6:
        out.kind = 'all_extension_numbers_of_type';
        out.value = r.string();
        break;
      case 7:
        out.kind = 'list_services';
        out.value = r.string();
        break;
      default:
        r.skip(wire);
    }
  }
  return out;
}

/** Builds the ServerReflectionResponse for one request (same field numbers in v1 and v1alpha). */
export function answerReflection(index: DescriptorIndex, services: readonly string[], requestBytes: Uint8Array): Uint8Array {
  const req = parseRequest(requestBytes);
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(req.host);
  w.tag(2, WireType.LengthDelimited).bytes(requestBytes);
  const files = (list: Uint8Array[]): void => {
    w.tag(4, WireType.LengthDelimited).fork();
    for (const f of list) w.tag(1, WireType.LengthDelimited).bytes(f);
    w.join();
  };
  const error = (code: Status, message: string): void => {
    w.tag(7, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(code).tag(2, WireType.LengthDelimited).string(message).join();
  };
  const byFile = (name: string | undefined, what: string): void => {
    const list = name ? index.fileWithDependencies(name) : undefined;
    if (list) files(list);
    else error(Status.NOT_FOUND, `${what} not found`);
  };
  switch (req.kind) {
    case 'list_services':
      w.tag(6, WireType.LengthDelimited).fork();
      for (const s of services) w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(s).join();
      w.join();
      break;
    case 'file_by_filename':
      byFile(req.value, `file ${req.value}`);
      break;
    case 'file_containing_symbol':
      byFile(index.fileOfSymbol(req.value), `symbol ${req.value}`);
      break;
    case 'file_containing_extension':
      byFile(index.fileOfExtension(req.value, req.extensionNumber), `extension ${req.extensionNumber} of ${req.value}`);
      break;
    case 'all_extension_numbers_of_type': {
      const numbers = index.extensionNumbers(req.value);
      if (!numbers) {
        error(Status.NOT_FOUND, `type ${req.value} not found`);
        break;
      }
      w.tag(5, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(req.value);
      for (const n of numbers) w.tag(2, WireType.Varint).int32(n);
      w.join();
      break;
    }
    default:
      error(Status.INVALID_ARGUMENT, 'empty reflection request');
  }
  return w.finish();
}

const identity = (b: Buffer): Buffer => b;

function reflectionDefinition(pkg: string): ServiceDefinition {
  return {
    serverReflectionInfo: {
      path: `/${pkg}.ServerReflection/ServerReflectionInfo`,
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  } as ServiceDefinition;
}

/** The health service's name. */
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * The file `grpc/health/v1/health.proto` as a descriptor: the messages and the two methods
 * grpc-health-check 2.x serves (Check and Watch; it has no List, so none is described).
 */
export function healthFile(): FileDescriptorProto {
  const field = (name: string, type: FieldDescriptorProto_Type, typeName?: string) => ({
    name,
    number: 1,
    label: FieldDescriptorProto_Label.OPTIONAL,
    type,
    jsonName: name,
    ...(typeName ? { typeName } : {}),
  });
  const statuses = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
  const method = (name: string, serverStreaming: boolean) => ({
    name,
    inputType: '.grpc.health.v1.HealthCheckRequest',
    outputType: '.grpc.health.v1.HealthCheckResponse',
    serverStreaming,
  });
  return create(FileDescriptorProtoSchema, {
    name: 'grpc/health/v1/health.proto',
    package: 'grpc.health.v1',
    syntax: 'proto3',
    messageType: [
      { name: 'HealthCheckRequest', field: [field('service', FieldDescriptorProto_Type.STRING)] },
      {
        name: 'HealthCheckResponse',
        field: [field('status', FieldDescriptorProto_Type.ENUM, '.grpc.health.v1.HealthCheckResponse.ServingStatus')],
        enumType: [{ name: 'ServingStatus', value: statuses.map((n, number) => ({ name: n, number })) }],
      },
    ],
    service: [{ name: 'Health', method: [method('Check', false), method('Watch', true)] }],
  });
}

/** The reflection service names we serve. */
export const REFLECTION_SERVICES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'] as const;

/**
 * Adds reflection (v1 and v1alpha) to a server. Only services whose schema is
 * in the descriptor set and that are registered on the server are listed, and
 * grpc.health.v1.Health unless `health` is false (the server must serve it).
 */
export function addReflection(server: Server, descriptorSetPath: string, registered: readonly string[], health = true): void {
  const index = new DescriptorIndex(readFileSync(descriptorSetPath), health ? [healthFile()] : []);
  const listed = [...registered.filter((s) => index.services.includes(s)), ...(health ? [HEALTH_SERVICE] : [])];
  const impl: UntypedServiceImplementation = {
    serverReflectionInfo: (call: ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (req: Buffer) => {
        call.write(Buffer.from(answerReflection(index, listed, req)));
      });
      call.on('end', () => call.end());
      call.on('error', () => call.end());
    },
  };
  server.addService(reflectionDefinition('grpc.reflection.v1'), impl);
  server.addService(reflectionDefinition('grpc.reflection.v1alpha'), impl);
}
