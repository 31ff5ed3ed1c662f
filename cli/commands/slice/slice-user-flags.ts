/**
 * A slice user from the command line: `--ssh-key FILE` (repeatable) and `--user URN`, by default the
 * caller's own URN as its certificate names it (the one the TLS flags give).
 */
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { fedlabUrnsOf, parseCertificate } from '../../../services/core/identity/certificate.js';
import { checkSliceUserUrn } from '../../../services/core/identity/ssh-keys.js';
import type { SliceUser } from '../../../services/generated/fedlab/v1/common.js';
import { tlsFrom, type TlsFileFlags } from '../../cli-support.js';
import { readSshPublicKeyFile } from './ssh-key-file.js';

/** The flags of a command that names a slice user. */
export interface SliceUserFlags {
  sshKey: string[];
  user?: string;
}

/** The URN the caller's certificate names (its first certificate's single `urn:fedlab:` URI). */
export function callerUrnOf(flags: TlsFileFlags): string {
  const pem = tlsFrom(flags).cert;
  const urns = fedlabUrnsOf(parseCertificate(pem, 'your certificate'));
  if (urns.length !== 1) throw new InvalidArgumentError(`your certificate names ${urns.length} Fedlab URNs, not one; give --user URN`);
  return urns[0] as string;
}

/** The user the flags name with their keys, checked; undefined when no --ssh-key is given. */
export function sliceUserFromFlags(flags: SliceUserFlags & TlsFileFlags): SliceUser | undefined {
  if (flags.sshKey.length === 0) {
    if (flags.user !== undefined) throw new InvalidArgumentError('--user names whose --ssh-key it is: give --ssh-key FILE with it');
    return undefined;
  }
  const urn = checkSliceUserUrn(flags.user ?? callerUrnOf(flags), '--user');
  const keys = flags.sshKey.map((f) => readSshPublicKeyFile(f).line);
  return { urn, sshKeys: [...new Set(keys)] };
}
