/**
 * The SSH endpoint's host key: an Ed25519 key made at the first start
 * (written exclusively, mode 0600) and kept, so clients that pinned it from
 * GetNodeInfo or a manifest keep trusting the node across restarts. An
 * existing file is read only when it is no symlink, is ours and is private.
 */
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { FailedPreconditionError } from '../../core/errors.js';
import { sshFingerprint, newSshKeyPair } from '../../core/identity/ssh-keys.js';

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

/**
 * Reads the key file without following a symlink, and only when this process's user owns it and nobody
 * else may read or write it (as sshd insists for its own host keys): anything else refuses the start.
 */
function readOwnKeyFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new FailedPreconditionError(`ssh.host_key_file ${file} is a symbolic link; give the key file itself`);
    }
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FailedPreconditionError(`ssh.host_key_file ${file} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw new FailedPreconditionError(`ssh.host_key_file ${file} is owned by uid ${st.uid}, not by this process's uid ${uid}; chown it`);
    }
    if ((st.mode & 0o077) !== 0) {
      throw new FailedPreconditionError(
        `ssh.host_key_file ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: group and others may use it; chmod 600 it`,
      );
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Loads the host key from `file`, making an Ed25519 one there first when there is none. */
export function loadOrCreateHostKey(file: string): HostKey {
  let text: string;
  try {
    text = readOwnKeyFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const pair = newSshKeyPair();
    try {
      // Exclusive (O_EXCL, which also refuses a symlink put there): two starts racing on one data dir never overwrite each other's key.
      writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    text = readOwnKeyFile(file);
  }
  const key = parsed(text, file);
  if (!key.isPrivateKey()) throw new FailedPreconditionError(`ssh.host_key_file ${file} is not a private key`);
  const blob = key.getPublicSSH();
  return { privateKey: text, publicLine: `${key.type} ${blob.toString('base64')}`, fingerprint: sshFingerprint(blob) };
}
