/**
 * Who may call the provider: its administrators (by the URN of their TLS
 * certificate) may call everything; readers (URNs or patterns) may only read
 * deployments, and never see a step's env or stdin (where secrets go). Anyone
 * else is PERMISSION_DENIED, naming who they are and what they lack.
 */
import { PermissionDeniedError } from '../core/errors.js';
import { targetCovers, urnEquals } from '../core/identity/urn.js';

/** The caller as TLS identifies it. */
export interface Caller {
  readonly urn: string;
}

/** The provider's access policy. */
export class Access {
  constructor(
    private readonly admins: readonly string[],
    private readonly readers: readonly string[],
  ) {}

  /** Whether the caller is an administrator. */
  isAdmin(caller: Caller): boolean {
    return this.admins.some((a) => urnEquals(a, caller.urn));
  }

  /** What of a deployment the caller sees: everything (administrators), or all but env and stdin (readers). */
  viewOf(caller: Caller): 'admin' | 'reader' {
    return this.isAdmin(caller) ? 'admin' : 'reader';
  }

  /** Throws PERMISSION_DENIED unless the caller is an administrator. */
  requireAdmin(caller: Caller, what: string): void {
    if (!this.isAdmin(caller)) {
      throw new PermissionDeniedError(`${caller.urn} may not ${what}: only this provider's administrators (config admins) may`, {
        rule: 'admin',
      });
    }
  }

  /** Throws PERMISSION_DENIED unless the caller is an administrator or a reader. */
  requireReader(caller: Caller, what: string): void {
    if (this.isAdmin(caller)) return;
    if (this.readers.some((r) => targetCovers(r, caller.urn))) return;
    throw new PermissionDeniedError(
      `${caller.urn} may not ${what}: only this provider's administrators and readers (config admins, readers) may`,
      { rule: 'reader' },
    );
  }
}
