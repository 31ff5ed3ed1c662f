/** How `fedlab slice users` shows a slice's users: one row per key (type, fingerprint, comment), or JSON. */
import { parseSshPublicKey } from '../../../services/core/identity/ssh-keys.js';
import type { SliceUser } from '../../../services/generated/fedlab/v1/common.js';
import { table } from '../../text-table.js';

/** One key of a user as shown. */
interface KeyView {
  readonly type: string;
  readonly bits: number;
  readonly fingerprint: string;
  readonly comment: string;
  readonly line: string;
}

function view(line: string): KeyView {
  try {
    const k = parseSshPublicKey(line, 'key');
    return { type: k.type, bits: k.bits, fingerprint: k.fingerprint, comment: k.comment, line: k.line };
  } catch {
    // The SA checked it; a key this CLI cannot read is still shown.
    return { type: line.split(' ')[0] ?? '?', bits: 0, fingerprint: '?', comment: '', line };
  }
}

/** The users as a table: USER, KEY (type and bits), FINGERPRINT, COMMENT; a user with no key has one row. */
export function usersTable(users: readonly SliceUser[]): string {
  if (users.length === 0) return 'no users: nobody may log in to the slivers with SSH';
  const rows = users.flatMap((u) =>
    u.sshKeys.length === 0
      ? [[u.urn, '-', '-', '']]
      : u.sshKeys.map((l) => {
          const k = view(l);
          return [u.urn, `${k.type} ${k.bits || ''}`.trim(), k.fingerprint, k.comment];
        }),
  );
  return table(['USER', 'KEY', 'FINGERPRINT', 'COMMENT'], rows);
}

/** The users as JSON: each with its keys' lines, types and fingerprints. */
export function usersJson(users: readonly SliceUser[]): unknown {
  return users.map((u) => ({
    urn: u.urn,
    ssh_keys: u.sshKeys.map((l) => {
      const k = view(l);
      return { type: k.type, bits: k.bits, fingerprint: k.fingerprint, comment: k.comment, line: k.line };
    }),
  }));
}
