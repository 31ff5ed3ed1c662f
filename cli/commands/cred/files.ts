/** The files `fedlab cred` reads and writes: chain files, keys, certificates (standard input for `-`). */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { identityFromCertificate, parseCertificate } from '../../../services/core/identity/certificate.js';
import { parsePrivateKeyPem } from '../../../services/core/identity/keys.js';
import { writeChainFile } from '../../chain-file.js';
import { writeOut } from '../../printable.js';

/** A file's text; `-` is standard input. */
function readText(file: string): string {
  return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
}

/** Reads a chain file: one compact JWS per line, root first; blank lines are ignored. */
export function readChainFile(file: string): string[] {
  const links = readText(file)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (links.length === 0)
    throw new InvalidArgumentError(`${file} holds no credential (a chain file has one compact JWS per line, root first)`);
  return links;
}

/** A PEM private key file. */
export function readKey(file: string) {
  return parsePrivateKeyPem(readFileSync(file), file);
}

/** The identity (URN, key) a certificate file names. */
export async function readIdentity(file: string) {
  return identityFromCertificate(parseCertificate(readFileSync(file), file));
}

/** Writes a chain to `file` whole (an existing file only with `replace`, never through a symbolic link), or to standard output without one. */
export function writeChainOut(file: string | undefined, chain: readonly string[], replace = false): void {
  if (!file) {
    writeOut(`${chain.join('\n')}\n`);
    return;
  }
  writeChainFile(file, chain, { replace });
  writeOut(`wrote a chain of ${chain.length} link${chain.length === 1 ? '' : 's'} to ${file}\n`);
}
