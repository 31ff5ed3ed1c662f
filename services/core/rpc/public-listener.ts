/**
 * A listener with TLS server authentication only, for the few calls a caller
 * makes before it can present a certificate we accept: a node redeeming its
 * enrolment token, a domain that is not peered yet fetching our bundle. It
 * serves only the unary methods it is given (plus grpc.health.v1 when asked),
 * with the same error mapping and one log line per call as the main server.
 * Anyone may connect, so one client address may hold at most
 * `maxConnectionsPerAddress` connections at once; more are refused at the
 * TCP level (per-address-listener.ts) while the listener answers everyone else.
 */
import { performance } from 'node:perf_hooks';
import {
  Server,
  ServerCredentials,
  status as Status,
  type sendUnaryData,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from '../log.js';
import { admit, boundedDefinition, type MethodDefinitionLike } from './adapter.js';
import { listenPerAddress } from './per-address-listener.js';
import { DEFAULT_SERVER_LIMITS, resolveServerLimits } from './server-limits.js';
import type { TlsMaterial } from './server.js';
import { toGrpcStatus } from './status.js';

/** One unary method of a generated service definition (ts-proto's shape) and its handler. */
export interface PublicMethod<Req, Res> {
  /** The generated method definition, e.g. `FederationService.getBundle`. */
  readonly definition: { readonly path: string; readonly requestStream: false; readonly responseStream: false };
  /** The name grpc-js knows it by (the proto method name, e.g. `GetBundle`). */
  readonly originalName: string;
  readonly handle: (request: Req) => Promise<Res>;
}

/** What a public listener serves and where. */
export interface PublicListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: Pick<TlsMaterial, 'cert' | 'key'>;
  readonly log: Logger;
  /** The config setting that names this listener, for errors (e.g. `enrolment.listen`). */
  readonly setting: string;
  /** A short name for log lines (e.g. `enrolment`). */
  readonly name: string;
  /** Methods keyed by their ts-proto name (e.g. `getBundle`). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each method has its own request type
  readonly methods: Readonly<Record<string, PublicMethod<any, any>>>;
  /** Health statuses to serve, by service name; none: no health service. */
  readonly health?: Readonly<Record<string, 'SERVING' | 'NOT_SERVING'>>;
  /** grpc-js server options (message sizes…). */
  readonly serverOptions?: Readonly<Record<string, number>>;
  /** Most connections one client address may hold open at once ({@link DEFAULT_MAX_CONNECTIONS_PER_ADDRESS}). */
  readonly maxConnectionsPerAddress?: number;
}

/** A running public listener. */
export interface PublicListener {
  readonly port: number;
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 2_000;

/**
 * Connections one client address may hold open on a public listener by default: a node enrols over
 * one, a peer domain's admin fetches a bundle over one; a site behind one NAT address enrolling a few
 * dozen nodes at once (closed connections take a moment to go) still fits.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;

/**
 * The cap a config's `server` section sets for its public listeners (`max_connections_per_address`,
 * checked by the config schema), or {@link DEFAULT_MAX_CONNECTIONS_PER_ADDRESS}.
 */
export function maxConnectionsPerAddressOf(server: { readonly max_connections_per_address?: number } | undefined): number {
  return server?.max_connections_per_address ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
}

/** Starts a server-authenticated-only listener; rejects naming `setting` when the address is taken. */
export async function startPublicListener(options: PublicListenerOptions): Promise<PublicListener> {
  const { log } = options;
  const server = new Server({ 'grpc.enable_channelz': 0, ...options.serverOptions });
  // Requests over the size limit or not decodable answer RESOURCE_EXHAUSTED / INVALID_ARGUMENT, as on the main server.
  const maxReceiveBytes = options.serverOptions?.['grpc.max_receive_message_length'] ?? DEFAULT_SERVER_LIMITS.maxReceiveBytes;
  const bounded = boundedDefinition(
    Object.fromEntries(Object.entries(options.methods).map(([key, m]) => [key, m.definition as unknown as MethodDefinitionLike])),
    resolveServerLimits({ maxReceiveBytes, methodReceiveBytes: {} }),
  );
  const definition: Record<string, unknown> = {};
  const impl: UntypedServiceImplementation = {};
  for (const [key, method] of Object.entries(options.methods)) {
    const path = method.definition.path;
    definition[key] = { ...bounded[key], originalName: method.originalName };
    impl[key] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const started = performance.now();
      const ms = (): number => Math.round((performance.now() - started) * 10) / 10;
      Promise.resolve()
        .then(() => {
          admit(call.request);
          return method.handle(call.request);
        })
        .then(
          (res) => {
            callback(null, res);
            log.info({ method: path, listener: options.name, caller: call.getPeer(), code: 'OK', ms: ms() }, 'rpc');
          },
          (err: unknown) => {
            const st = toGrpcStatus(err, log, path);
            callback(st);
            log.info({ method: path, listener: options.name, caller: call.getPeer(), code: Status[st.code], ms: ms() }, 'rpc');
          },
        );
    };
  }
  server.addService(definition as never, impl);
  const health = options.health ? new HealthImplementation({ ...options.health }) : undefined;
  health?.addToServer(server);
  // Server authentication only: no client certificate is asked for.
  const creds = ServerCredentials.createSsl(
    null,
    [{ private_key: Buffer.from(options.tls.key), cert_chain: Buffer.from(options.tls.cert) }],
    false,
  );
  const tcp = await listenPerAddress(server, creds, {
    host: options.host,
    port: options.port,
    maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    log,
    name: options.name,
    listener: { setting: options.setting },
  });
  let stopping: Promise<void> | undefined;
  return {
    port: tcp.port,
    stop: () => {
      stopping ??= new Promise<void>((resolve) => {
        health?.setStatus('', 'NOT_SERVING');
        void tcp.close();
        const timer = setTimeout(() => {
          server.forceShutdown();
          tcp.destroyAll();
          resolve();
        }, STOP_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(timer);
          // Sockets still in their TLS handshake never became sessions the server closes.
          tcp.destroyAll();
          resolve();
        });
      });
      return stopping;
    },
  };
}
