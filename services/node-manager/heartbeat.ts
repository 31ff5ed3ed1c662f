/**
 * Heartbeats to the node's management authority: every interval the node
 * pushes its capacity, what is committed, what is measured in use, its sliver
 * count, version and endpoint. The authority's certificate must name its URN
 * (not just any server of the CA), and every beat has a deadline, so an
 * authority that is down costs one deadline per beat and nothing more.
 *
 * Beats travel as messages on one long-lived HeartbeatStream (the authority
 * checks the node's identity once per stream instead of once per call). A
 * beat not answered within the deadline fails and the stream is cancelled, to
 * be reopened; a stream that fails is reopened after a backoff (1 s, doubling,
 * at most a minute), and the beats meanwhile go as unary Heartbeat calls. An
 * authority without the method (UNIMPLEMENTED: an older one) gets unary calls,
 * and is asked for a stream again every ten minutes.
 */
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { createClient, isServiceError, type PromiseClient } from '../core/rpc/client.js';
import { SessionStream } from '../core/rpc/session-client.js';
import type { TlsMaterial } from '../core/rpc/server.js';
import { ManagementAuthorityService, type HeartbeatRequest, type HeartbeatResponse } from '../generated/fedlab/v1/management_authority.js';
import type { Clock } from '../core/clock.js';
import type { NodeManager } from './node-manager.js';
import { Periodic } from '../core/periodic.js';

/** Options of {@link HeartbeatClient}. */
export interface HeartbeatOptions {
  /** host:port of the management authority. */
  readonly address: string;
  /** The management authority's URN, which its server certificate must name. */
  readonly authorityUrn: string;
  readonly tls: TlsMaterial;
  readonly intervalMs: number;
  readonly deadlineMs: number;
  readonly nm: NodeManager;
  readonly clock: Clock;
  readonly log: Logger;
  /** The node's underlay address for links (the network section's), reported in every heartbeat. */
  readonly underlayAddress?: string;
  /** Send every beat as a unary call, never on a stream (as node managers before HeartbeatStream did). */
  readonly unaryOnly?: boolean;
}

/** How heartbeats travel now. */
export type HeartbeatTransport = 'stream' | 'unary';

/** After UNIMPLEMENTED, how long beats go unary before a stream is tried again (ms). */
export const UNARY_AFTER_UNIMPLEMENTED_MS = 10 * 60_000;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

type Stream = SessionStream<HeartbeatRequest, HeartbeatResponse>;

/** Pushes heartbeats on a schedule. */
export class HeartbeatClient {
  private readonly client: PromiseClient<typeof ManagementAuthorityService>;
  private readonly periodic: Periodic;
  private sequence = 0;
  private failures = 0;
  private inFlight: AbortController | undefined;
  private stream: Stream | undefined;
  /** Streams that failed in a row (the backoff grows with them). */
  private streamFailures = 0;
  /** Before this time (the node's clock) beats go unary. */
  private streamAfter = 0;
  private stopped = false;
  /** The last answer (for diagnostics). */
  lastResponse: HeartbeatResponse | undefined;
  /** How the last beat travelled (for diagnostics and tests). */
  lastTransport: HeartbeatTransport | undefined;

  constructor(private readonly o: HeartbeatOptions) {
    this.client = createClient(ManagementAuthorityService, {
      address: o.address,
      tls: o.tls,
      deadlineMs: o.deadlineMs,
      serverUrn: o.authorityUrn,
    });
    this.periodic = new Periodic({ name: 'heartbeat', intervalMs: o.intervalMs, log: o.log, immediate: true }, () => this.beat());
  }

  start(): void {
    this.periodic.start();
  }

  /** Sends one heartbeat now. Failures are logged (the first of a run at warn level) and never thrown. */
  async beat(): Promise<void> {
    const { usage } = await this.o.nm.sampleUsage();
    const node = this.o.nm.node();
    this.sequence++;
    const ac = new AbortController();
    this.inFlight = ac;
    try {
      this.lastResponse = await this.send(
        {
          nodeUrn: node.urn,
          sequence: this.sequence,
          sentAt: new Date(this.o.clock.now()),
          capacity: node.capacity,
          allocated: node.allocated,
          usage,
          sliverCount: node.sliverCount,
          version: node.version,
          endpoint: node.endpoint,
          ...(node.images ? { images: node.images } : {}),
          ...(node.ssh ? { ssh: node.ssh } : {}),
          ...(this.o.underlayAddress ? { underlayAddress: this.o.underlayAddress } : {}),
        },
        ac.signal,
      );
      if (this.failures > 0) this.o.log.info({ after: this.failures }, 'heartbeats reach the management authority again');
      this.failures = 0;
    } catch (err) {
      this.failures++;
      const detail = { address: this.o.address, failures: this.failures, err: (err as Error).message };
      if (this.failures === 1) this.o.log.warn(detail, 'heartbeat to the management authority failed');
      else this.o.log.debug(detail, 'heartbeat failed again');
    } finally {
      this.inFlight = undefined;
    }
  }

  /** One beat: on the stream when there is one to use, else a unary call. */
  private async send(request: HeartbeatRequest, signal: AbortSignal): Promise<HeartbeatResponse> {
    const now = this.o.clock.now();
    if (!this.o.unaryOnly && now >= this.streamAfter) {
      const stream = this.openStream();
      const cancel = (): void => stream.cancel();
      signal.addEventListener('abort', cancel, { once: true });
      try {
        const res = await stream.send(request, this.o.deadlineMs);
        this.streamFailures = 0;
        this.lastTransport = 'stream';
        return res;
      } catch (err) {
        this.dropStream(stream);
        if (!isServiceError(err, Status.UNIMPLEMENTED)) {
          this.streamFailures++;
          this.streamAfter = now + Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.streamFailures - 1));
          throw err;
        }
        this.streamAfter = now + UNARY_AFTER_UNIMPLEMENTED_MS;
        this.o.log.info({ address: this.o.address }, 'the management authority has no HeartbeatStream; heartbeats go as calls');
      } finally {
        signal.removeEventListener('abort', cancel);
      }
    }
    const res = await this.client.heartbeat(request, { deadlineMs: this.o.deadlineMs, signal });
    this.lastTransport = 'unary';
    return res;
  }

  /** The open stream, or a new one when it ended (between beats: the authority restarted, or closed it). */
  private openStream(): Stream {
    if (this.stream?.open) return this.stream;
    const stream = new SessionStream(this.client.raw, ManagementAuthorityService.heartbeatStream);
    void stream.ended.then((end) => {
      if (this.stream === stream) this.stream = undefined;
      if (end.code !== Status.OK && end.code !== Status.CANCELLED && !this.stopped)
        this.o.log.debug({ code: Status[end.code], details: end.details }, 'heartbeat stream ended');
    });
    this.stream = stream;
    return stream;
  }

  private dropStream(stream: Stream): void {
    stream.cancel();
    if (this.stream === stream) this.stream = undefined;
  }

  /** Stops beating, cancels a beat in flight, half-closes the stream (the authority ends it with OK), closes the channel. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.inFlight?.abort();
    await this.periodic.stop();
    const stream = this.stream;
    this.stream = undefined;
    if (stream?.open) {
      stream.end();
      // Bounded like a beat: an authority that does not answer the half-close is cut off.
      const timer = setTimeout(() => stream.cancel(), this.o.deadlineMs);
      await stream.ended;
      clearTimeout(timer);
    }
    this.client.close();
  }
}
