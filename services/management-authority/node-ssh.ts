/**
 * A node's SSH endpoint as the node reports it (EnrollNode, Heartbeat): checked before it is kept —
 * `address` host:port, `host_key` an accepted public key, `host_key_fingerprint` that key's — so
 * that what the site publishes (ListResources, GetNode, each sliver's manifest) is what clients can
 * pin. An endpoint that fails the check is ignored with one log line per distinct offer (at most one a
 * minute per node: node-warning-throttle.ts), never kept
 * or published; the node keeps serving slivers (a heartbeat is not refused for it).
 */
import { checkSshEndpoint, type SshEndpointInput } from '../core/identity/ssh-keys.js';
import type { Logger } from '../core/log.js';
import { warningNow, type WarningThrottle } from './node-warning-throttle.js';
import type { SshEndpoint } from '../generated/fedlab/v1/common.js';

/** Whether two endpoints are the same offer. */
export function sameSshEndpoint(a: SshEndpointInput | undefined, b: SshEndpointInput | undefined): boolean {
  if (!a || !b) return a === b;
  return a.address === b.address && a.hostKey === b.hostKey && a.hostKeyFingerprint === b.hostKeyFingerprint;
}

/** The state a node's endpoint checks keep between heartbeats. */
export interface SshOffers {
  /** The last offer accepted (as sent), so a repeat costs a comparison, not a parse. */
  lastOffered?: SshEndpointInput;
  /** The last offer refused (as sent), so a repeat is not logged again. */
  lastRefused?: SshEndpointInput;
  /** Refused offers' log lines, at most one a minute (a fresh `offers`, as at enrolment, always logs). */
  warnings?: WarningThrottle;
}

/**
 * The endpoint to keep for a node's report: the checked endpoint, undefined when the node reports
 * none, or `'ignore'` when the report fails the check (the caller keeps what it had; logged once).
 */
export function checkedSshEndpoint(
  nodeUrn: string,
  offered: SshEndpoint | undefined,
  offers: SshOffers,
  log: Logger,
  now = 0,
): SshEndpointInput | undefined | 'ignore' {
  if (!offered || (offered.address === '' && offered.hostKey === '' && offered.hostKeyFingerprint === '')) {
    delete offers.lastOffered;
    return undefined;
  }
  if (sameSshEndpoint(offered, offers.lastRefused)) return 'ignore';
  try {
    const ok = checkSshEndpoint(offered, 'ssh');
    offers.lastOffered = { address: offered.address, hostKey: offered.hostKey, hostKeyFingerprint: offered.hostKeyFingerprint };
    delete offers.lastRefused;
    return ok;
  } catch (err) {
    offers.lastRefused = { address: offered.address, hostKey: offered.hostKey, hostKeyFingerprint: offered.hostKeyFingerprint };
    const held = warningNow((offers.warnings ??= { held: 0 }), now);
    if (held !== undefined)
      log.warn(
        { node: nodeUrn, reason: (err as Error).message, ...(held ? { held } : {}) },
        "node's SSH endpoint ignored: it does not check out, so it is not published",
      );
    return 'ignore';
  }
}

/** The protobuf form of a kept endpoint. */
export function sshEndpointToWire(e: SshEndpointInput | undefined): SshEndpoint | undefined {
  return e ? { address: e.address, hostKey: e.hostKey, hostKeyFingerprint: e.hostKeyFingerprint } : undefined;
}

/** What {@link takeSshReport} reads and sets on a node. */
export interface SshHolder {
  readonly record: { readonly urn: string };
  ssh?: SshEndpointInput;
  sshOffers?: SshOffers;
}

/**
 * Takes the endpoint a heartbeat reports: a repeat of the last offer costs a comparison; a new one is
 * checked and kept (or, failing, ignored). Returns whether the node's endpoint changed.
 */
export function takeSshReport(node: SshHolder, offered: SshEndpoint | undefined, log: Logger, now: number): boolean {
  const offers = (node.sshOffers ??= {});
  if (sameSshEndpoint(offered, offers.lastOffered)) return false;
  const ssh = checkedSshEndpoint(node.record.urn, offered, offers, log, now);
  if (ssh === 'ignore' || sameSshEndpoint(ssh, node.ssh)) return false;
  if (ssh) node.ssh = ssh;
  else delete node.ssh;
  return true;
}
