/**
 * The SSH endpoint's host key: an Ed25519 key made at the first start
 * (written exclusively, mode 0600) and kept, so clients that pinned it from
 * GetNodeInfo or a manifest keep trusting the node across restarts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { FailedPreconditionError } from '../../core/errors.js';
import { sshFingerprint } from '../../core/identity/ssh-keys.js';

/** A loaded host key. */
export interface HostKey {
  /** OpenSSH private key text, for the server. */
  readonly privateKey: string;
  /** "ssh-ed25519 AAAA…" (no comment): the known_hosts form. */
  readonly publicLine: string;
  /** "SHA256:<base64, unpadded>", as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
}

function parsed(text: string, file: string): ParsedKey {
  const key = ssh2.utils.parseKey(text);
  if (key instanceof Error) throw new FailedPreconditionError(`ssh.host_key_file ${file}: ${key.message}`);
  const one = Array.isArray(key) ? key[0] : key;
  if (!one) throw new FailedPreconditionError(`ssh.host_key_file ${file} holds no key`);
  return one;
}

/** Loads the host key from `file`, making an Ed25519 one there first when there is none. */
export function loadOrCreateHostKey(file: string): HostKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    try {
      // Exclusive: two starts racing on one data dir never overwrite each other's key.
      writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    text = readFileSync(file, 'utf8');
  }
  const key = parsed(text, file);
  if (!key.isPrivateKey()) throw new FailedPreconditionError(`ssh.host_key_file ${file} is not a private key`);
  const blob = key.getPublicSSH();
  return { privateKey: text, publicLine: `${key.type} ${blob.toString('base64')}`, fingerprint: sshFingerprint(blob) };
}
