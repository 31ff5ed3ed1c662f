/**
 * The service provider's clients: its slice authority, the sites'
 * management authorities (ManagementAuthority and Aggregate), and node
 * managers by endpoint. Every client pins its server's URN where the provider
 * knows it, and every call carries a deadline from the config.
 */
import { createClient, type PromiseClient } from '../core/rpc/client.js';
import type { TransportTrust } from '../core/rpc/trust.js';
import type { TlsMaterial } from '../core/rpc/server.js';
import { AggregateService } from '../generated/fedlab/v1/aggregate.js';
import { ManagementAuthorityService } from '../generated/fedlab/v1/management_authority.js';
import { NodeManagerService } from '../generated/fedlab/v1/node_manager.js';
import { SliceAuthorityService } from '../generated/fedlab/v1/slice_authority.js';

/** A slice authority client. */
export type SaClient = PromiseClient<typeof SliceAuthorityService>;
/** A management authority client. */
export type MaClient = PromiseClient<typeof ManagementAuthorityService>;
/** An aggregate client. */
export type AggregateClient = PromiseClient<typeof AggregateService>;
/** A node manager client. */
export type NmClient = PromiseClient<typeof NodeManagerService>;

/** Where a site's management authority is. */
export interface SiteEndpoint {
  readonly domain: string;
  readonly maUrn: string;
  readonly endpoint: string;
}

/**
 * Reconnection back-off of the provider's channels: grpc-js would otherwise wait up to two minutes
 * between attempts to reach a server that was down, and the provider's retries would keep failing
 * fast long after the server is back.
 */
const CHANNEL_OPTIONS = { 'grpc.initial_reconnect_backoff_ms': 500, 'grpc.max_reconnect_backoff_ms': 5_000 };

/** What the clients are made with. */
export interface RemotesOptions {
  readonly tls: TlsMaterial;
  readonly sliceAuthority: { readonly urn: string; readonly endpoint: string };
  /** Default deadlines of calls to management authorities, the slice authority and node managers (ms). */
  readonly deadlines: { readonly ma: number; readonly sa: number; readonly nm: number };
  /** Peered domains' CAs (the host's federation trust), to dial servers of other domains. */
  readonly trust?: TransportTrust;
}

/** The clients the provider uses, opened lazily and closed together. */
export class Remotes {
  private sa: SaClient | undefined;
  private readonly mas = new Map<string, { ma: MaClient; aggregate: AggregateClient }>();
  private readonly nms = new Map<string, NmClient>();

  constructor(private readonly deps: RemotesOptions) {}

  /** The slice authority. */
  sliceAuthority(): SaClient {
    this.sa ??= createClient(SliceAuthorityService, {
      address: this.deps.sliceAuthority.endpoint,
      tls: this.deps.tls,
      ...(this.deps.trust ? { trust: this.deps.trust } : {}),
      serverUrn: this.deps.sliceAuthority.urn,
      deadlineMs: this.deps.deadlines.sa,
      channelOptions: CHANNEL_OPTIONS,
    });
    return this.sa;
  }

  /** A site's management authority and aggregate. */
  site(site: SiteEndpoint): { ma: MaClient; aggregate: AggregateClient } {
    let c = this.mas.get(site.domain);
    if (!c) {
      const opts = {
        address: site.endpoint,
        tls: this.deps.tls,
        ...(this.deps.trust ? { trust: this.deps.trust } : {}),
        serverUrn: site.maUrn,
        deadlineMs: this.deps.deadlines.ma,
        channelOptions: CHANNEL_OPTIONS,
      };
      c = { ma: createClient(ManagementAuthorityService, opts), aggregate: createClient(AggregateService, opts) };
      this.mas.set(site.domain, c);
    }
    return c;
  }

  /** The node manager at `endpoint` (its certificate must name `nodeUrn`). */
  nodeManager(endpoint: string, nodeUrn: string): NmClient {
    const key = `${nodeUrn} ${endpoint}`;
    let c = this.nms.get(key);
    if (!c) {
      c = createClient(NodeManagerService, {
        address: endpoint,
        tls: this.deps.tls,
        ...(this.deps.trust ? { trust: this.deps.trust } : {}),
        serverUrn: nodeUrn,
        deadlineMs: this.deps.deadlines.nm,
        channelOptions: CHANNEL_OPTIONS,
      });
      this.nms.set(key, c);
    }
    return c;
  }

  /** Closes every channel. */
  close(): void {
    this.sa?.close();
    this.sa = undefined;
    for (const c of this.mas.values()) {
      c.ma.close();
      c.aggregate.close();
    }
    this.mas.clear();
    for (const c of this.nms.values()) c.close();
    this.nms.clear();
  }
}
