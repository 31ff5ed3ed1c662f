/**
 * Heartbeats to the node's management authority: every interval the node
 * pushes its capacity, what is committed, what is measured in use, its sliver
 * count, version and endpoint. The authority's certificate must name its URN
 * (not just any server of the CA), and every call has a deadline, so an
 * authority that is down costs one deadline per beat and nothing more.
 */
import type { Logger } from '../core/log.js';
import { createClient, type PromiseClient } from '../core/rpc/client.js';
import type { TlsMaterial } from '../core/rpc/server.js';
import { ManagementAuthorityService, type HeartbeatResponse } from '../generated/fedlab/v1/management_authority.js';
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
}

/** Pushes heartbeats on a schedule. */
export class HeartbeatClient {
  private readonly client: PromiseClient<typeof ManagementAuthorityService>;
  private readonly periodic: Periodic;
  private sequence = 0;
  private failures = 0;
  private inFlight: AbortController | undefined;
  /** The last answer (for diagnostics). */
  lastResponse: HeartbeatResponse | undefined;

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
      this.lastResponse = await this.client.heartbeat(
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
        { deadlineMs: this.o.deadlineMs, signal: ac.signal },
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

  /** Stops beating, cancels a beat in flight, closes the channel. */
  async stop(): Promise<void> {
    this.inFlight?.abort();
    await this.periodic.stop();
    this.client.close();
  }
}
