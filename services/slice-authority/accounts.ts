/**
 * Who may call the slice authority: providers with an account in the config
 * (authenticated by their mTLS certificate's URN), administrators, and nobody
 * whose key is on the authority's own revocation list. Also the quota check of
 * a provider's live slices.
 */
import { PermissionDeniedError, ResourceExhaustedError } from '../core/errors.js';
import type { SaProviderConfig } from './config.js';
import type { Use } from './records.js';

/** The caller as TLS identifies it. */
export interface Peer {
  readonly urn: string;
  readonly thumbprint: string;
}

/** An authenticated caller. */
export interface Caller {
  readonly urn: string;
  readonly thumbprint: string;
  readonly admin: boolean;
  /** The provider account, when the caller has one. */
  readonly account?: SaProviderConfig;
}

/** Quotas of a provider account (absent: no cap). */
export type Quotas = SaProviderConfig['quotas'];

/** Provider accounts and administrators. */
export class Accounts {
  private readonly providers: ReadonlyMap<string, SaProviderConfig>;
  private readonly admins: ReadonlySet<string>;

  constructor(
    providers: readonly SaProviderConfig[],
    admins: readonly string[],
    private readonly isKeyRevoked: (thumbprint: string) => boolean,
  ) {
    this.providers = new Map(providers.map((p) => [p.urn, p]));
    this.admins = new Set(admins);
  }

  /** The caller, or PERMISSION_DENIED when it has no account or its key is revoked. */
  caller(peer: Peer): Caller {
    if (this.isKeyRevoked(peer.thumbprint)) {
      throw new PermissionDeniedError(
        `the key of ${peer.urn} (${peer.thumbprint}) is revoked at this slice authority; get a new certificate and ask the authority's admin to reinstate the account`,
        {
          rule: 'revoked-key',
        },
      );
    }
    const admin = this.admins.has(peer.urn);
    const account = this.providers.get(peer.urn);
    if (!admin && !account) {
      throw new PermissionDeniedError(
        `${peer.urn} has no provider account at this slice authority; ask its admin to add it (providers in the slice authority's config) and connect with that provider's certificate`,
        { rule: 'account' },
      );
    }
    return { urn: peer.urn, thumbprint: peer.thumbprint, admin, ...(account ? { account } : {}) };
  }

  /** A provider caller (for CreateSlice): administrators without an account cannot own slices. */
  provider(peer: Peer): Caller & { account: SaProviderConfig } {
    const c = this.caller(peer);
    if (!c.account)
      throw new PermissionDeniedError(`${peer.urn} is an administrator but has no provider account; slices are created by providers`, {
        rule: 'account',
      });
    return c as Caller & { account: SaProviderConfig };
  }
}

/** Throws RESOURCE_EXHAUSTED naming the quota and what is left when `used + asked` passes a quota. */
export function checkQuotas(provider: string, quotas: Quotas, slices: number, used: Use, asked: Use): void {
  const check = (name: string, cap: number | undefined, have: number, want: number): void => {
    if (cap === undefined || have + want <= cap) return;
    const left = Math.max(0, cap - have);
    throw new ResourceExhaustedError(
      `quota ${name} of ${provider}: ${have} of ${cap} in use, this request needs ${want}, ${left} left — delete slices or ask the slice authority's admin for a larger quota`,
      { quota: name, left },
    );
  };
  check('slices', quotas.slices, slices, 1);
  check('slivers', quotas.slivers, used.slivers, asked.slivers);
  check('cpu_millis', quotas.cpu_millis, used.cpuMillis, asked.cpuMillis);
  check('mem_mb', quotas.mem_mb, used.memMb, asked.memMb);
  check('disk_mb', quotas.disk_mb, used.diskMb, asked.diskMb);
}
