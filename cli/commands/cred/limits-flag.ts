/** `--lim`: the resource caps of a credential (or of an MA → SA delegation). */
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { LIMIT_KEYS, type Limits } from '../../../services/core/credentials/index.js';
import { splitList } from '../../flag-values.js';

/** Parses `slivers=10,mem_mb=512`. */
export function parseLimits(value: string | undefined): Limits {
  const out: Record<string, number> = {};
  for (const item of splitList(value)) {
    const m = /^([a-z_]+)=([0-9]+)$/.exec(item);
    if (!m || !(LIMIT_KEYS as readonly string[]).includes(m[1] as string) || !Number.isSafeInteger(Number(m[2]))) {
      throw new InvalidArgumentError(
        `--lim takes key=value pairs with keys ${LIMIT_KEYS.join(', ')} and whole numbers, got ${JSON.stringify(item)}`,
      );
    }
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}
