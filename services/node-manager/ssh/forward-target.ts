/**
 * Where a `direct-tcpip` channel may go: an IP literal (v4 or v6, no zone)
 * and a port 1–65535. No names: a name would be resolved by the relay in the
 * host's file system view (its resolv.conf and hosts), not the sliver's; and
 * nothing that could read as an option of the relay.
 */
import { isIP } from 'node:net';

/** A checked forwarding target. */
export interface ForwardTarget {
  readonly host: string;
  readonly port: number;
}

/** The target of a direct-tcpip request, or undefined when it is not an IP literal and a port. */
export function forwardTarget(destIP: unknown, destPort: unknown): ForwardTarget | undefined {
  if (typeof destIP !== 'string' || destIP.length > 45 || destIP.includes('%') || isIP(destIP) === 0) return undefined;
  if (typeof destPort !== 'number' || !Number.isInteger(destPort) || destPort < 1 || destPort > 65_535) return undefined;
  return { host: destIP, port: destPort };
}
