/** `--out` of `fedlab site delegate`: checked before anything is asked of the MA. */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InvalidArgumentError } from '../../../services/core/errors.js';

/** Refuses an `--out` that cannot be written. */
export function checkWritable(file: string): void {
  const probe = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.probe`);
  try {
    writeFileSync(probe, '', { flag: 'wx', mode: 0o600 });
    rmSync(probe, { force: true });
  } catch (err) {
    throw new InvalidArgumentError(`--out ${file}: cannot write there (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
