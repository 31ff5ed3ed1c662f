/** How `fedlab cred` prints a credential's resource caps and times. */
import { LIMIT_KEYS, type Limits } from '../../../services/core/credentials/index.js';

/** `slivers=10 mem_mb=512`, or `none`. */
export function formatLimits(lim: Limits): string {
  const parts = LIMIT_KEYS.filter((k) => lim[k] !== undefined).map((k) => `${k}=${lim[k] as number}`);
  return parts.length > 0 ? parts.join(' ') : 'none';
}

/** A time in seconds since the epoch as RFC 3339, without milliseconds. */
export function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
