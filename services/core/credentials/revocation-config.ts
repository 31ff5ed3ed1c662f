/**
 * The `revocation` config section every service may have: how long a signed
 * copy of the service's own list promises to hold (`next_update_s`: it
 * re-signs and re-publishes well before), how long past a held list's
 * `next_update` the verifier still takes its issuer's chains (`grace_s`), and
 * the caps on live entries of the service's own list (`max_entries` in all,
 * `max_entries_per_revoker` for each principal who is not an administrator):
 * entries leave as their credentials expire, and a Revoke past a cap is
 * refused RESOURCE_EXHAUSTED.
 */
import { z } from 'zod';

/** Default seconds from a list's `iat` to its `next_update`. */
export const DEFAULT_NEXT_UPDATE_S = 3600;
/** Default seconds past `next_update` before an issuer's chains are refused. */
export const DEFAULT_GRACE_S = 900;

/** Default cap on live entries of one issuer's list. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** Default cap on live entries one principal (not an administrator) put on a list. */
export const DEFAULT_MAX_ENTRIES_PER_REVOKER = 1_000;

/** The `revocation` section. */
export const revocationConfigSchema = z
  .object({
    /** A signed list's `next_update` is its `iat` plus this (s); the list is re-published every half of it. */
    next_update_s: z
      .number()
      .int()
      .min(10)
      .max(30 * 86_400)
      .default(DEFAULT_NEXT_UPDATE_S),
    /** How long past a held list's `next_update` its issuer's chains still pass (s). */
    grace_s: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .default(DEFAULT_GRACE_S),
    /** Live entries (not yet expired) the service's own list may hold (DEFAULT_MAX_ENTRIES when absent). */
    max_entries: z.number().int().min(1).max(1_000_000).optional(),
    /** Live entries one principal who is not an administrator may have put on the list (DEFAULT_MAX_ENTRIES_PER_REVOKER when absent). */
    max_entries_per_revoker: z.number().int().min(1).max(1_000_000).optional(),
  })
  .strict();

/** The section as services use it. */
export interface RevocationSettings {
  readonly nextUpdateS: number;
  readonly graceS: number;
}

/** The caps on a service's own list (see the module comment). */
export interface RevocationCaps {
  /** Live entries in all. */
  readonly maxEntries: number;
  /** Live entries put on by one principal who is not an administrator. */
  readonly maxEntriesPerRevoker: number;
}

/** The settings of a config's `revocation` section (defaults when absent). */
export function revocationSettings(section: z.infer<typeof revocationConfigSchema> | undefined): RevocationSettings {
  return { nextUpdateS: section?.next_update_s ?? DEFAULT_NEXT_UPDATE_S, graceS: section?.grace_s ?? DEFAULT_GRACE_S };
}

/** The caps of a config's `revocation` section (defaults when absent). */
export function revocationCaps(section: z.infer<typeof revocationConfigSchema> | undefined): RevocationCaps {
  return {
    maxEntries: section?.max_entries ?? DEFAULT_MAX_ENTRIES,
    maxEntriesPerRevoker: section?.max_entries_per_revoker ?? DEFAULT_MAX_ENTRIES_PER_REVOKER,
  };
}

/** The validity a copy signed at `nowMs` carries. */
export function validityAt(nowMs: number, settings: RevocationSettings): { iat: number; nextUpdate: number } {
  const iat = Math.floor(nowMs / 1000);
  return { iat, nextUpdate: iat + settings.nextUpdateS };
}
