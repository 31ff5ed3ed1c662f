/** `--out` of `fedlab site delegate`: checked before anything is asked of the MA. */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { checkOutputFile } from '../../../certs/output-file.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';

/** Refuses an `--out` that cannot be written: an unwritable directory, a symbolic link, or an existing file unless `replace` (--force). */
export function checkWritable(file: string, replace = false): void {
  checkOutputFile(file, { replace });
  const probe = join(dirname(file), `.${basename(file)}.${randomBytes(12).toString('hex')}.probe`);
  try {
    writeFileSync(probe, '', { flag: 'wx', mode: 0o600 });
    rmSync(probe, { force: true });
  } catch (err) {
    throw new InvalidArgumentError(`--out ${file}: cannot write there (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
