/**
 * The API's `ResourceLimits` as a credential's `lim` claim: only the limits the request sets, each a
 * whole number of 0 or more (anything else is INVALID_ARGUMENT naming the field).
 */
import type { Limits } from '../credentials/index.js';
import { InvalidArgumentError } from '../errors.js';
import type { ResourceLimits } from '../../generated/fedlab/v1/common.js';

/** Converts and checks `limits` of a delegation or credential request. */
export function limitsFromWire(l: ResourceLimits | undefined): Limits {
  const out: Record<string, number> = {};
  const put = (k: string, v: number | undefined): void => {
    if (v === undefined) return;
    if (!Number.isSafeInteger(v) || v < 0)
      throw new InvalidArgumentError(`limits.${k} must be a whole number of 0 or more`, { field: `limits.${k}` });
    out[k] = v;
  };
  put('slivers', l?.slivers);
  put('cpu_millis', l?.cpuMillis);
  put('mem_mb', l?.memMb);
  put('disk_mb', l?.diskMb);
  put('ttl_s', l?.ttlS);
  return out;
}
