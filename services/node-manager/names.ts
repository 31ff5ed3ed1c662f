/**
 * Names that reach the file system, cgroupfs and process arguments. A sliver
 * is known on disk and in the kernel only by the name part of its URN, which
 * the URN grammar already limits to `[a-z0-9][a-z0-9._-]{0,62}`; this module
 * checks it again at every boundary so no caller can slip a path separator or
 * a shell metacharacter through.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { isValidName } from '../core/identity/urn.js';

/** Throws unless `name` is a safe single path component (a URN name part). */
export function assertSafeName(name: string, what = 'name'): void {
  if (typeof name !== 'string' || !isValidName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : String(name);
    throw new InvalidArgumentError(
      `${what} ${shown} is not allowed: use lower-case letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit)`,
      {
        rule: 'name',
      },
    );
  }
}
