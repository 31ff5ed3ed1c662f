/**
 * A node's underlay address and link bandwidth as the node reports them
 * (EnrollNode, Heartbeat): the address where other nodes' VXLAN link ends
 * reach it. Checked before it is kept: a unicast IPv4 address other nodes
 * could reach (not unspecified, loopback, link-local, multicast or broadcast). Enrolment
 * refuses a bad one (INVALID_ARGUMENT naming the field); a heartbeat's bad
 * one is ignored with one log line per distinct offer, at most one a minute per
 * node (node-warning-throttle.ts; the node keeps its slivers; its links keep the
 * address it had).
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { warningNow, type WarningThrottle } from './node-warning-throttle.js';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Why an address cannot be an underlay address, or undefined when it can. */
export function underlayProblem(address: string): string | undefined {
  if (!IPV4.test(address)) return 'must be an IPv4 address a.b.c.d';
  const first = Number(address.split('.')[0]);
  if (first === 0) return 'must not be in 0.0.0.0/8 (unspecified)';
  if (first === 127) return 'must not be a loopback address: other nodes could not reach it';
  if (address.startsWith('169.254.')) return 'must not be a link-local address (169.254.0.0/16): other nodes could not reach it';
  if (first >= 224) return 'must be a unicast address (not multicast, reserved or broadcast)';
  return undefined;
}

/** The checked underlay address of an EnrollNode request (absent or empty: none); INVALID_ARGUMENT when bad. */
export function checkUnderlayAddress(address: string | undefined, field = 'underlay_address'): string | undefined {
  if (address === undefined || address === '') return undefined;
  const problem = underlayProblem(address);
  if (problem) throw new InvalidArgumentError(`${field} ${JSON.stringify(address.slice(0, 60))} ${problem}`, { field });
  return address;
}

/** What {@link takeUnderlayReport} reads and sets on a node. */
export interface UnderlayHolder {
  readonly record: { readonly urn: string };
  underlayAddress?: string;
  /** The last refused offer (so a repeat is not logged again). */
  underlayRefused?: string;
  /** Refused offers' log lines, at most one a minute. */
  underlayWarnings?: WarningThrottle;
}

/** Takes the underlay address a heartbeat reports (absent or empty: none). Returns whether the node's address changed. */
export function takeUnderlayReport(node: UnderlayHolder, offered: string | undefined, log: Logger, now: number): boolean {
  const next = offered === '' ? undefined : offered;
  if (next === node.underlayAddress) return false;
  if (next !== undefined) {
    const problem = underlayProblem(next);
    if (problem) {
      if (node.underlayRefused !== next) {
        const held = warningNow((node.underlayWarnings ??= { held: 0 }), now);
        if (held !== undefined)
          log.warn(
            { node: node.record.urn, address: next.slice(0, 60), reason: problem, ...(held ? { held } : {}) },
            "node's underlay address ignored",
          );
      }
      node.underlayRefused = next;
      return false;
    }
    node.underlayAddress = next;
  } else delete node.underlayAddress;
  delete node.underlayRefused;
  return true;
}
