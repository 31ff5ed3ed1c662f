/** `host:port` endpoints (node managers, sites, peers' bundle endpoints, CLI address flags); one check for all. */
import { isIP } from 'node:net';
import { InvalidArgumentError } from './errors.js';

/** A parsed endpoint. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

const HOST = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$/;

/** Parses `host:port` or `[v6]:port`; errors name `field`. */
export function parseEndpoint(value: string, field = 'endpoint'): Endpoint {
  if (typeof value !== 'string' || value.length === 0 || value.length > 300) {
    throw new InvalidArgumentError(`${field} must be host:port, got ${JSON.stringify(String(value).slice(0, 80))}`, { field });
  }
  let host: string;
  let port: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:([0-9]{1,5})$/.exec(value);
  if (v6) {
    host = v6[1] as string;
    port = v6[2] as string;
    if (isIP(host) !== 6)
      throw new InvalidArgumentError(`${field}: ${JSON.stringify(value.slice(0, 80))} has no valid IPv6 address`, { field });
  } else {
    const i = value.lastIndexOf(':');
    host = value.slice(0, i);
    port = value.slice(i + 1);
    if (i <= 0 || !/^[0-9]{1,5}$/.test(port) || !(isIP(host) === 4 || HOST.test(host))) {
      throw new InvalidArgumentError(`${field} ${JSON.stringify(value.slice(0, 80))} is not host:port`, { field });
    }
  }
  const n = Number(port);
  if (n < 1 || n > 65535) throw new InvalidArgumentError(`${field}: port must be 1 to 65535`, { field });
  return { host, port: n };
}

/** Checks `host:port` (see {@link parseEndpoint}) and returns it as given. */
export function checkEndpoint(value: string, field = 'endpoint'): string {
  parseEndpoint(value, field);
  return value;
}
