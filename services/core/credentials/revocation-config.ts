/**
 * The `revocation` config section every service may have: how long a signed
 * copy of the service's own list promises to hold (`next_update_s`: it
 * re-signs and re-publishes well before), and how long past a held list's
 * `next_update` the verifier still takes its issuer's chains (`grace_s`).
 */
import { z } from 'zod';

/** Default seconds from a list's `iat` to its `next_update`. */
export const DEFAULT_NEXT_UPDATE_S = 3600;
/** Default seconds past `next_update` before an issuer's chains are refused. */
export const DEFAULT_GRACE_S = 900;

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
  })
  .strict();

/** The section as services use it. */
export interface RevocationSettings {
  readonly nextUpdateS: number;
  readonly graceS: number;
}

/** The settings of a config's `revocation` section (defaults when absent). */
export function revocationSettings(section: z.infer<typeof revocationConfigSchema> | undefined): RevocationSettings {
  return { nextUpdateS: section?.next_update_s ?? DEFAULT_NEXT_UPDATE_S, graceS: section?.grace_s ?? DEFAULT_GRACE_S };
}

/** The validity a copy signed at `nowMs` carries. */
export function validityAt(nowMs: number, settings: RevocationSettings): { iat: number; nextUpdate: number } {
  const iat = Math.floor(nowMs / 1000);
  return { iat, nextUpdate: iat + settings.nextUpdateS };
}
