// The fedlab.v1 API as the descriptor set describes it (services/generated/fedlab.binpb, written by
// `npm run gen`): every service and method, read with @bufbuild/protobuf, so that tests which must
// cover every RPC (the authorisation matrix, the wire fuzzer) learn of a new one without being told.
import { readFileSync } from 'node:fs';
import { createFileRegistry, fromBinary, type DescMessage, type DescMethod, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { descriptorSetPath } from '../../services/core/paths.js';

/** One RPC of the API. */
export interface ApiMethod {
  /** `Service.Method`, e.g. `NodeManager.GetSliver` (the service without its package). */
  readonly key: string;
  readonly service: string;
  readonly name: string;
  /** The gRPC path, e.g. `/fedlab.v1.NodeManager/GetSliver`. */
  readonly path: string;
  readonly serverStreaming: boolean;
  /** A session stream: the request is sent as its one message, then the stream is half-closed. */
  readonly bidiStreaming: boolean;
  readonly input: DescMessage;
  readonly output: DescMessage;
  readonly desc: DescMethod;
}

let cached: { registry: FileRegistry; methods: ApiMethod[] } | undefined;

function load(): { registry: FileRegistry; methods: ApiMethod[] } {
  if (cached) return cached;
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath())));
  const methods: ApiMethod[] = [];
  for (const type of registry) {
    if (type.kind !== 'service' || !type.typeName.startsWith('fedlab.')) continue;
    for (const m of type.methods) {
      // Bidi streams are served as sessions (one answer per message); client-only streams are not served.
      if (m.methodKind === 'client_streaming') throw new Error(`${type.typeName}/${m.name}: client streams are not served by the RPC core`);
      methods.push({
        key: `${type.name}.${m.name}`,
        service: type.name,
        name: m.name,
        path: `/${type.typeName}/${m.name}`,
        serverStreaming: m.methodKind === 'server_streaming',
        bidiStreaming: m.methodKind === 'bidi_streaming',
        input: m.input,
        output: m.output,
        desc: m,
      });
    }
  }
  methods.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  cached = { registry, methods };
  return cached;
}

/** Every method of every fedlab service in the descriptor set, sorted by `Service.Method`. */
export function apiMethods(): readonly ApiMethod[] {
  return load().methods;
}

/** The registry of every type in the descriptor set (to encode and decode any message). */
export function apiRegistry(): FileRegistry {
  return load().registry;
}
