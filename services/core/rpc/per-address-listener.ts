/**
 * A TCP listener in front of a grpc-js server that caps the connections one
 * client address may hold open at once. grpc-js has no such setting, so the
 * listener is ours: it accepts each socket, counts it against its remote
 * address, refuses one over the cap by closing it at once (before any TLS
 * work), and hands the others to the grpc-js server through its connection
 * injector, which does TLS and HTTP/2 on them as on a port it bound itself.
 * A caller that opens many connections (or leaves many TLS handshakes
 * half-done) thus holds at most the cap, and everyone else still gets in.
 */
import { lookup } from 'node:dns/promises';
import { isIP, createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server, ServerCredentials } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../log.js';
import { listenAddress, type ListenerName } from './bind.js';

/** What {@link listenPerAddress} needs. */
export interface PerAddressListenerOptions {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** Most connections one client address may hold open at once. */
  readonly maxConnectionsPerAddress: number;
  readonly log: Logger;
  /** A short name for log lines (e.g. `enrolment`). */
  readonly name: string;
  /** For errors: the setting that chooses the address. */
  readonly listener: ListenerName;
}

/** A running listener. */
export interface PerAddressListener {
  readonly port: number;
  /** Connections open now from `address` (as the listener counts it). */
  openFrom(address: string): number;
  /** Connections refused so far for being over the cap. */
  readonly refused: number;
  /** Stops accepting; connections already handed over are the grpc-js server's to close. */
  close(): Promise<void>;
  /** Destroys every socket still open (a forced stop). */
  destroyAll(): void;
}

/** How often (ms) a refusal is logged at most, so that a flood does not flood the log too. */
const LOG_EVERY_MS = 1_000;

/** The address a socket is counted under (an IPv4 address mapped into IPv6 counts as the IPv4 one). */
export function clientAddress(socket: Pick<Socket, 'remoteAddress'>): string {
  const a = socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/** Listens on `host:port` (every address the host name resolves to) and feeds `server` within the per-address cap. */
export async function listenPerAddress(
  server: Server,
  credentials: ServerCredentials,
  options: PerAddressListenerOptions,
): Promise<PerAddressListener> {
  const cap = options.maxConnectionsPerAddress;
  const injector = server.createConnectionInjector(credentials);
  const open = new Map<string, number>();
  const sockets = new Set<Socket>();
  let refused = 0;
  let loggedAt = 0;

  const accept = (socket: Socket): void => {
    const address = clientAddress(socket);
    const n = open.get(address) ?? 0;
    if (n >= cap) {
      refused++;
      socket.destroy();
      const now = Date.now();
      if (now - loggedAt >= LOG_EVERY_MS) {
        loggedAt = now;
        options.log.warn(
          { listener: options.name, address, open: n, cap, refused },
          `connection refused: ${address} already holds ${n} connections (the cap per address)`,
        );
      }
      return;
    }
    open.set(address, n + 1);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
    // A socket error after the hand-over is the TLS/HTTP2 layer's to report; this keeps it from throwing.
    socket.on('error', () => undefined);
    injector.injectConnection(socket);
  };

  const hosts = isIP(options.host) ? [options.host] : await resolve(options.host, options.listener);
  const servers: NetServer[] = [];
  let port = options.port;
  let firstError: Error | undefined;
  for (const h of hosts) {
    try {
      const s = await listenOn(h, port, accept);
      servers.push(s);
      port = (s.address() as { port: number }).port;
    } catch (err) {
      // Like grpc-js: a host name needs one of its addresses to listen, not all (a host without IPv6, say).
      firstError ??= err as Error;
    }
  }
  if (servers.length === 0)
    throw bindError(firstError ?? new Error('no address to listen on'), options.host, options.port, options.listener);

  return {
    port,
    openFrom: (address) => open.get(address) ?? 0,
    get refused() {
      return refused;
    },
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
    destroyAll: () => {
      for (const s of sockets) s.destroy();
      injector.destroy();
    },
  };
}

function listenOn(host: string, port: number, accept: (socket: Socket) => void): Promise<NetServer> {
  return new Promise<NetServer>((resolve, reject) => {
    const s = createServer(accept);
    s.once('error', reject);
    s.listen({ host, port }, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

async function resolve(host: string, listener: ListenerName): Promise<string[]> {
  try {
    return [...new Set((await lookup(host, { all: true })).map((a) => a.address))];
  } catch (err) {
    throw new InvalidArgumentError(
      `${listener.setting}: cannot listen on ${host}: the host name does not resolve (${(err as Error).message})`,
      { setting: listener.setting, address: host },
      { cause: err },
    );
  }
}

/** The error for an address that cannot be listened on, naming the setting (as bind.ts words it for grpc-js's own ports). */
function bindError(err: Error, host: string, port: number, listener: ListenerName): Error {
  if (err instanceof InvalidArgumentError) return err;
  const address = listenAddress(host, port);
  const msg = err.message;
  const why = /EADDRINUSE/i.test(msg)
    ? `the port is in use; ${listener.hint ?? `choose another in ${listener.setting}`}`
    : /EACCES/i.test(msg)
      ? 'permission denied (ports below 1024 need privileges); choose another port'
      : /EADDRNOTAVAIL/i.test(msg)
        ? 'this host has no such address; check the host'
        : msg;
  return new InvalidArgumentError(
    `${listener.setting}: cannot listen on ${address}: ${why}`,
    { setting: listener.setting, address },
    { cause: err },
  );
}
