/**
 * The node manager's SSH settings, compiled once from the config's `ssh`
 * section (absent: no SSH endpoint).
 */
import { join } from 'node:path';
import type { NmConfig } from '../config.js';

/** SSH endpoint settings in domain terms. */
export interface SshSettings {
  readonly listenHost: string;
  readonly listenPort: number;
  /** host:port published to clients; the listen host and the bound port when absent. */
  readonly address?: string;
  readonly hostKeyFile: string;
  readonly maxSessionsPerSlice: number;
  /** 0: no idle limit. */
  readonly idleTimeoutMs: number;
  /** 0: no session limit. */
  readonly maxSessionMs: number;
  readonly maxUnauthenticated: number;
  readonly handshakeTimeoutMs: number;
  /** Open `direct-tcpip` forwards of one slice on this node (each is a relay process). */
  readonly maxForwardsPerSlice: number;
  /** Channels (sessions and forwards, open or being opened) of one connection. */
  readonly maxChannelsPerConnection: number;
  /** Logged-in connections of one slice on this node. */
  readonly maxConnectionsPerSlice: number;
  /** Logged-in connections on this node. */
  readonly maxConnections: number;
}

/** Bounds used when the config has no key for them (the config schema may not know them yet). */
export const SSH_DEFAULT_BOUNDS = {
  max_forwards_per_slice: 16,
  max_channels_per_connection: 16,
  max_connections_per_slice: 32,
  max_connections: 256,
} as const;

/** Keys of the `ssh` section for the bounds above, read when present. */
type BoundKeys = Partial<Record<keyof typeof SSH_DEFAULT_BOUNDS, number>>;

/** A configured bound when it is a positive integer, else the default. */
function bound(c: BoundKeys, key: keyof typeof SSH_DEFAULT_BOUNDS): number {
  const v = c[key];
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : SSH_DEFAULT_BOUNDS[key];
}

/** Splits `host:port` (an IPv6 host keeps no brackets). */
export function splitHostPort(s: string): { host: string; port: number } {
  const at = s.lastIndexOf(':');
  const host = s.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(s.slice(at + 1)) };
}

/** The compiled settings, or undefined when the config has no `ssh` section. */
export function sshSettings(config: NmConfig): SshSettings | undefined {
  const c = config.ssh;
  if (!c) return undefined;
  const listen = splitHostPort(c.listen);
  return {
    listenHost: listen.host,
    listenPort: listen.port,
    ...(c.address ? { address: c.address } : {}),
    hostKeyFile: c.host_key_file ?? join(config.data_dir, 'ssh_host_ed25519_key'),
    // The owner's policy may only lower the bound.
    maxSessionsPerSlice: Math.min(c.max_sessions_per_slice, config.policy.ssh_sessions_per_slice ?? Infinity),
    idleTimeoutMs: c.idle_timeout_s * 1000,
    maxSessionMs: c.max_session_s * 1000,
    maxUnauthenticated: c.max_unauthenticated,
    handshakeTimeoutMs: c.handshake_timeout_ms,
    maxForwardsPerSlice: bound(c as BoundKeys, 'max_forwards_per_slice'),
    maxChannelsPerConnection: bound(c as BoundKeys, 'max_channels_per_connection'),
    maxConnectionsPerSlice: bound(c as BoundKeys, 'max_connections_per_slice'),
    maxConnections: bound(c as BoundKeys, 'max_connections'),
  };
}
