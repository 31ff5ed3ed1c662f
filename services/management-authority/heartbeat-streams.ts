/**
 * HeartbeatStream: a node's heartbeats as messages on one long-lived stream.
 * A unary Heartbeat pays for a whole mutual-TLS gRPC call each time; on a stream
 * the caller's identity is established once, when the stream opens, and each
 * message then costs the registry's update and a few checks.
 *
 * Checked when the stream opens: the caller is an enrolled node, with the key
 * it enrolled with (anyone else is PERMISSION_DENIED before reading a message).
 * Checked on every message, because it can change while a stream is open:
 * - everything a unary Heartbeat checks (NodeRegistry.heartbeat): the message
 *   names the caller, the node is still enrolled, with the same key — map
 *   lookups, so a node removed or re-enrolled with a new key is refused at its
 *   next message;
 * - that the CA the caller's certificate chains to still vouches for its domain
 *   (the adapter's re-check; a refreshed trust bundle can withdraw a peer CA),
 *   a verdict cached per trust generation.
 * The certificate itself cannot change on a connection. Revocations are not a
 * heartbeat's business, as with the unary call: a node whose owner credential
 * is revoked still reports its health, and admission refuses to use it; every
 * answer carries the revocation list's version, so the node fetches new entries.
 *
 * One stream per node: a newer stream of the node ends the older one (ABORTED)
 * at its first accepted heartbeat, so a node that reconnects is not refused for
 * a stream its old connection still holds, and a stream whose first message is
 * refused ends alone. A stream that drops is a missed heartbeat and nothing more:
 * DOWN detection stays with the registry's monitor (three missed intervals).
 */
import { AbortedError, PermissionDeniedError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { SessionHandler } from '../core/rpc/adapter.js';
import type { HeartbeatRequest, HeartbeatResponse } from '../generated/fedlab/v1/management_authority.js';
import type { HeartbeatRate } from './heartbeat-rate.js';
import { MISSED_FOR_DOWN, type NodeRegistry } from './node-registry.js';

/** Options of {@link HeartbeatStreams}. */
export interface HeartbeatStreamsOptions {
  readonly registry: NodeRegistry;
  readonly clock: Clock;
  /** The interval nodes are asked to keep (ms). */
  readonly intervalMs: number;
  /** The site's revocation list version, sent with every answer. */
  readonly revocationVersion: () => number;
  /** The per-node heartbeat rate, shared with unary Heartbeat (heartbeat-rate.ts). */
  readonly rate?: HeartbeatRate;
}

/** Streams per node at once: the current one, and a newer one while it supersedes the old. */
const STREAMS_PER_NODE = 2;

/** The answer to one heartbeat, unary or on a stream. */
export function heartbeatAnswer(clock: Clock, intervalMs: number, revocationVersion: number): HeartbeatResponse {
  return {
    serverTime: new Date(clock.now()),
    heartbeatIntervalS: Math.max(1, Math.ceil(intervalMs / 1000)),
    revocationVersion,
  };
}

/** The open heartbeat streams of the site's nodes, newest per node. */
export class HeartbeatStreams {
  private readonly current = new Map<string, { readonly end: (error: Error) => void }>();

  constructor(private readonly o: HeartbeatStreamsOptions) {}

  /** Streams open now (diagnostics). */
  get size(): number {
    return this.current.size;
  }

  /** The session handler of `HeartbeatStream`. */
  handler(): SessionHandler<HeartbeatRequest, HeartbeatResponse> {
    const { registry, clock, intervalMs } = this.o;
    return {
      limits: {
        maxPerCaller: STREAMS_PER_NODE,
        // Far above any heartbeat interval a node manager is configured with, far below what would load the MA.
        messagesPerSecond: 10,
        burst: 20,
        // A node silent this long is DOWN anyway; its stream is let go.
        idleMs: Math.max(60_000, (MISSED_FOR_DOWN + 1) * intervalMs),
      },
      open: (ctx, end) => {
        const node = registry.get(ctx.peer.urn);
        if (!node || node.record.keyThumbprint !== ctx.peer.thumbprint) {
          throw new PermissionDeniedError(
            `${ctx.peer.urn} is not a node enrolled at this site with this key; a node opens its heartbeat stream with the certificate its enrolment returned`,
            { rule: node ? 'node_key' : 'node_urn' },
          );
        }
        const urn = ctx.peer.urn;
        const me = { end };
        return {
          message: (req) => {
            registry.heartbeat(ctx.peer, req, this.o.rate?.admit);
            // A stream takes over from the node's older one at its first accepted beat, not at its open:
            // a stream whose first message is refused ends alone and leaves the working one be.
            if (this.current.get(urn) !== me) {
              this.current.get(urn)?.end(new AbortedError('a newer heartbeat stream of this node opened; this one is closed'));
              this.current.set(urn, me);
            }
            return heartbeatAnswer(clock, intervalMs, this.o.revocationVersion());
          },
          close: () => {
            if (this.current.get(urn) === me) this.current.delete(urn);
          },
        };
      },
    };
  }
}
