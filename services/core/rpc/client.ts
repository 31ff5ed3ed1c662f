/**
 * The one client factory. Every call carries a deadline (the client's default
 * unless the caller gives its own), credential chains travel in metadata
 * `fedlab-credential`, and the server's identity can be pinned to a URN
 * instead of a host name (the URN is what Fedlab principals are).
 */
import { createHash } from 'node:crypto';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { Client, credentials as grpcCredentials, Metadata, status as Status, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { fedlabUrnsOf } from '../identity/certificate.js';
import { parseUrn, urnEquals } from '../identity/urn.js';
import { CREDENTIAL_METADATA_KEY } from './context.js';
import { installHpackTables } from './hpack-table.js';
import type { MethodDefinitionLike } from './adapter.js';
import type { TlsMaterial } from './server.js';
import type { TransportTrust } from './trust.js';

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** `host:port` of the server. */
  readonly address: string;
  readonly tls: TlsMaterial;
  /** Default deadline of every call (ms). Default 10 s. */
  readonly deadlineMs?: number;
  /** When set, the server's certificate must name exactly this URN (host names are then not checked). */
  readonly serverUrn?: string;
  /** Extra grpc-js channel options. */
  readonly channelOptions?: Record<string, string | number>;
  /**
   * Server CA trust that follows changes (a domain's own CA plus its peers'), used instead of
   * `tls.caCerts`; the server's URN must also be one its CA vouches for (its own domain).
   */
  readonly trust?: TransportTrust;
  /** Told of every finished unary call: method path, status code name, seconds (for metrics). */
  readonly observe?: (method: string, code: string, seconds: number) => void;
}

/** Per-call options. */
export interface CallOpts {
  /** Deadline of this call in ms from now; the client's default when absent. */
  readonly deadlineMs?: number;
  /** Credential chain to present (root first). */
  readonly chain?: readonly string[];
  /** Extra metadata. */
  readonly metadata?: Metadata;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

type RequestOf<M> = M extends { requestDeserialize(bytes: Buffer): infer R } ? R : never;
type ResponseOf<M> = M extends { responseSerialize(value: infer R): Buffer } ? R : never;

/** A promise-based client for service definition `D`; server-streaming methods return async iterables. */
export type PromiseClient<D> = {
  [K in keyof D]: D[K] extends { responseStream: true }
    ? (request: RequestOf<D[K]>, opts?: CallOpts) => AsyncIterable<ResponseOf<D[K]>>
    : (request: RequestOf<D[K]>, opts?: CallOpts) => Promise<ResponseOf<D[K]>>;
} & {
  /** Closes the channel. */
  close(): void;
  /** The underlying grpc-js client (for waitForReady and channel state). */
  readonly raw: Client;
};

interface FullMethodDefinition extends MethodDefinitionLike {
  requestSerialize(value: never): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

const DEFAULT_DEADLINE_MS = 10_000;

/**
 * A channel whose peer was down refuses calls at once until its reconnect backoff ends; grpc-js lets that
 * grow to two minutes, so a restarted authority or node would be refused long after it is back. Between
 * Fedlab's services a peer is back within seconds of a restart, and a try every few seconds costs one peer little.
 * It is not free in bulk: a channel that cannot connect keeps trying in the background (grpc-js's pick_first),
 * every 5 s at most, until it is closed or idle for 30 minutes — 1,000 such channels to unreachable nodes took
 * an MA 9-25 % of a core in bench:ma (200 refused connects a second). A pool of many peers closes the channel of
 * one it cannot reach rather than keep it.
 */
const RECONNECT = { 'grpc.initial_reconnect_backoff_ms': 500, 'grpc.max_reconnect_backoff_ms': 5_000 } as const;

function sanUrns(cert: PeerCertificate): string[] {
  return fedlabUrnsOf(cert);
}

/**
 * A chain's metadata, built once per chain array: callers keep a chain and present it on many calls
 * (an MA's on every node call), and `Metadata.add` checks every character of every link, where a
 * clone of the built one copies references. Entries are confirmed link by link, so an array changed
 * after it was first sent is built anew.
 */
const chainMetadata = new WeakMap<readonly string[], { readonly links: readonly string[]; readonly md: Metadata }>();

function metadataOfChain(chain: readonly string[]): Metadata {
  const known = chainMetadata.get(chain);
  if (known && known.links.length === chain.length && known.links.every((l, i) => l === chain[i])) return known.md.clone();
  const md = new Metadata();
  for (const link of chain) md.add(CREDENTIAL_METADATA_KEY, link);
  chainMetadata.set(chain, { links: [...chain], md });
  return md.clone();
}

/** Builds the metadata of a call. */
export function callMetadata(opts: CallOpts): Metadata {
  if (!opts.metadata) return opts.chain?.length ? metadataOfChain(opts.chain) : new Metadata();
  const md = opts.metadata.clone();
  for (const link of opts.chain ?? []) md.add(CREDENTIAL_METADATA_KEY, link);
  return md;
}

const secureContexts = new Map<string, SecureContext>();

/**
 * One TLS context per key, certificate and CA set: building one parses them all (about a millisecond),
 * and a management authority opens a channel to each of its nodes with the same material. Each channel
 * still checks its own server's identity.
 */
function secureContextFor(tls: TlsMaterial): SecureContext {
  const id = createHash('sha256').update(tls.caCerts).update('\0').update(tls.cert).update('\0').update(tls.key).digest('base64url');
  let ctx = secureContexts.get(id);
  if (!ctx) {
    ctx = createSecureContext({ ca: tls.caCerts, cert: tls.cert, key: tls.key });
    if (secureContexts.size >= 64) secureContexts.delete(secureContexts.keys().next().value as string);
    secureContexts.set(id, ctx);
  }
  return ctx;
}

/** Creates a promise client for a generated service definition. */
export function createClient<D extends Record<string, MethodDefinitionLike>>(definition: D, options: ClientOptions): PromiseClient<D> {
  if (options.serverUrn) parseUrn(options.serverUrn);
  // Credential chains ride in headers: HPACK tables that hold them (hpack-table.ts).
  installHpackTables();
  const verify = options.serverUrn
    ? (_host: string, cert: PeerCertificate): Error | undefined => {
        const urns = sanUrns(cert);
        if (urns.length === 1 && urnEquals(urns[0] as string, options.serverUrn as string)) return undefined;
        return new Error(`server certificate names ${urns.join(', ') || 'no URN'}, expected ${options.serverUrn}`);
      }
    : (host: string, cert: PeerCertificate): Error | undefined => checkServerIdentity(host, cert);
  const trust = options.trust;
  const creds = trust
    ? trust.channelCredentials((host, cert) => verify(host, cert) ?? trust.checkServer(cert))
    : grpcCredentials.createFromSecureContext(secureContextFor(options.tls), { checkServerIdentity: verify });
  const raw = new Client(options.address, creds, { ...RECONNECT, ...options.channelOptions });
  const defaultDeadline = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const callOptions = (opts: CallOpts): CallOptions => ({ deadline: Date.now() + (opts.deadlineMs ?? defaultDeadline) });

  const out: Record<string, unknown> = {
    close: () => raw.close(),
    raw,
  };
  for (const [key, d] of Object.entries(definition)) {
    const def = d as FullMethodDefinition;
    const serialize = (v: unknown): Buffer => def.requestSerialize(v as never);
    const deserialize = (b: Buffer): unknown => def.responseDeserialize(b);
    if (def.requestStream) continue;
    if (def.responseStream) {
      out[key] = (request: unknown, opts: CallOpts = {}) => {
        const stream = raw.makeServerStreamRequest(def.path, serialize, deserialize, request, callMetadata(opts), callOptions(opts));
        const unbind = bindSignal(opts.signal, () => stream.cancel());
        stream.once('close', unbind);
        return stream as AsyncIterable<unknown>;
      };
    } else {
      out[key] = (request: unknown, opts: CallOpts = {}) =>
        new Promise((resolve, reject) => {
          let unbind = (): void => undefined;
          const started = performance.now();
          const call = raw.makeUnaryRequest(
            def.path,
            serialize,
            deserialize,
            request,
            callMetadata(opts),
            callOptions(opts),
            (err: ServiceError | null, res?: unknown) => {
              unbind();
              options.observe?.(def.path, err ? (Status[err.code] ?? String(err.code)) : 'OK', (performance.now() - started) / 1000);
              if (err) reject(err);
              else resolve(res);
            },
          );
          unbind = bindSignal(opts.signal, () => call.cancel());
        });
    }
  }
  return out as PromiseClient<D>;
}

/**
 * Cancels a call when `signal` aborts — at once if it already has (an abort listener added to an
 * aborted signal never runs, and the call would live until its deadline). Returns the unbinding
 * function, called when the call ends, so a long-lived signal does not collect listeners.
 */
function bindSignal(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    // After the call object exists, so the cancellation reaches it.
    queueMicrotask(cancel);
    return () => undefined;
  }
  signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

/** True when `err` is a gRPC error with the given code (or any gRPC error when no code is given). */
export function isServiceError(err: unknown, code?: number): err is ServiceError {
  return (
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    'details' in err &&
    (code === undefined || (err as ServiceError).code === code)
  );
}
