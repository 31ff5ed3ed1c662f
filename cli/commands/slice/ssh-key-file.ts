/**
 * Reading an SSH public key named by a flag (`--ssh-key FILE`, an OpenSSH `.pub` file): one key
 * line, checked by the one check Fedlab has (services/core/identity/ssh-keys.ts). A private key,
 * an empty or unreadable file, more than one key, or a key Fedlab does not accept is bad input
 * (exit 2) naming the flag and the file; the message never echoes key material.
 */
import { readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { parseSshPublicKey, type SshPublicKey } from '../../../services/core/identity/ssh-keys.js';

/** Largest key file read (a public key line is at most 8 KiB; comments may come with it). */
const MAX_FILE_BYTES = 64 * 1024;

/** Reads and checks the public key in `file` (named by `flag` in errors). */
export function readSshPublicKeyFile(file: string, flag = '--ssh-key'): SshPublicKey {
  const where = `${flag} ${file}`;
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new InvalidArgumentError(`${where}: not a regular file; give the public key file (e.g. ~/.ssh/id_ed25519.pub)`);
    if (st.size > MAX_FILE_BYTES) throw new InvalidArgumentError(`${where}: ${st.size} bytes is too large for a public key file`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`${where}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|^PuTTY-User-Key-File-/m.test(text)) {
    throw new InvalidArgumentError(`${where} is a private key; give the public key (the .pub file beside it), never the private one`, {
      rule: 'private_key',
    });
  }
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new InvalidArgumentError(`${where} holds no key`);
  if (lines.length > 1) throw new InvalidArgumentError(`${where} holds ${lines.length} lines; give a file with one public key`);
  return parseSshPublicKey(lines[0] as string, where);
}
