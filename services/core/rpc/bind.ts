/**
 * Binding a gRPC server to its address, with an error that names the listener.
 * A service may listen on several ports (an MA: its API, its enrolment port,
 * its public bundle endpoint), so "the port is in use" must say which one, and
 * which setting chooses it.
 */
import type { Server, ServerCredentials } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors.js';

/** Which listener is being bound, for the error message. */
export interface ListenerName {
  /** The config setting that chooses this listener's address, e.g. `listen` or `enrolment.listen`. */
  readonly setting: string;
  /** How to choose another port, e.g. "choose another with --port". */
  readonly hint?: string;
}

/** `host:port`, with brackets for an IPv6 host. */
export function listenAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Binds `server` to `host:port` (0: any free port) and resolves with the port bound. A port in use or
 * an address that cannot be bound is an {@link InvalidArgumentError} naming the setting and the address.
 */
export async function bindServer(
  server: Server,
  host: string,
  port: number,
  credentials: ServerCredentials,
  name: ListenerName,
): Promise<number> {
  const address = listenAddress(host, port);
  try {
    return await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
  } catch (err) {
    const msg = (err as Error).message;
    const why = /EADDRINUSE|address already in use/i.test(msg)
      ? `the port is in use; ${name.hint ?? `choose another in ${name.setting}`}`
      : /EACCES|permission denied/i.test(msg)
        ? 'permission denied (ports below 1024 need privileges); choose another port'
        : /EADDRNOTAVAIL|address not available/i.test(msg)
          ? 'this host has no such address; check the host'
          : msg;
    throw new InvalidArgumentError(
      `${name.setting}: cannot listen on ${address}: ${why}`,
      { setting: name.setting, address },
      { cause: err },
    );
  }
}
