/**
 * The gRPC clients a local federation hands out: an administrator's client of a site's MA, clients of
 * the slice authority and the service provider as any identity of the home domain. Each is pinned to
 * its server's URN and kept, so that stopping the federation closes every one still open.
 */
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import { ServiceProviderService } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceAuthorityService } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { LocalFederation, SiteRuntime } from './federation.js';
import { homeUrns, tlsOfDir } from './pki.js';

/** The clients of one federation. */
export class FederationClients {
  private readonly open: { close(): void }[] = [];

  constructor(private readonly fed: LocalFederation) {}

  /** An admin client of a site's MA. */
  ma(site: SiteRuntime): PromiseClient<typeof ManagementAuthorityService> {
    return this.keep(
      createClient(ManagementAuthorityService, {
        address: site.address,
        tls: tlsOfDir(site.paths.admin),
        serverUrn: site.maUrn,
        deadlineMs: 10_000,
      }),
    );
  }

  /** A client of the slice authority as `who` (an identity directory). */
  sa(who: string, deadlineMs: number): PromiseClient<typeof SliceAuthorityService> {
    return this.keep(
      createClient(SliceAuthorityService, {
        address: this.fed.saAddress,
        tls: tlsOfDir(who),
        serverUrn: homeUrns(this.fed.home).sa,
        deadlineMs,
      }),
    );
  }

  /** A client of the service provider as `who` (an identity directory). */
  sp(who: string, deadlineMs: number): PromiseClient<typeof ServiceProviderService> {
    return this.keep(
      createClient(ServiceProviderService, {
        address: this.fed.spAddress,
        tls: tlsOfDir(who),
        serverUrn: homeUrns(this.fed.home).sp,
        deadlineMs,
      }),
    );
  }

  /** Closes every client handed out (closing one twice does no harm). */
  closeAll(): void {
    for (const c of this.open.splice(0)) c.close();
  }

  private keep<C extends { close(): void }>(client: C): C {
    this.open.push(client);
    return client;
  }
}
