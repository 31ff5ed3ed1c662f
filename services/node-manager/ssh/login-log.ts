/**
 * The login log: one JSON line per SSH login, written when the connection
 * ends, through the node manager's logger (docs/node-manager.md, "SSH").
 */
import type { Logger } from '../../core/log.js';

/** One login, as logged. */
export interface LoginRecord {
  readonly slice: string;
  readonly sliver: string;
  readonly login: string;
  /** URN of the slice user whose key it was. */
  readonly user: string;
  /** SHA256 fingerprint of the key (not `key`: the logger redacts fields of that name). */
  readonly keyFingerprint: string;
  /** host:port of the client. */
  readonly client: string;
  readonly start: string;
  readonly end: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Why the connection ended when the node ended it (the sliver went away, the key was removed, a limit). */
  readonly endedBy?: string;
}

/** Writes one login line (msg "ssh login", event "ssh.login"). */
export function logLogin(log: Logger, rec: LoginRecord): void {
  log.info({ event: 'ssh.login', ...rec }, 'ssh login');
}
