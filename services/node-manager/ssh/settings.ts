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
    maxForwardsPerSlice: c.max_forwards_per_slice,
    maxChannelsPerConnection: c.max_channels_per_connection,
    maxConnectionsPerSlice: c.max_connections_per_slice,
    maxConnections: c.max_connections,
  };
}
