/** `fedlab cred revoke`: a credential (or a key) added to your signed revocation list file. */
import { readFileSync } from 'node:fs';
import { checkOutputFile, writeOutputFile } from '../../../certs/output-file.js';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import {
  emptyRevocationList,
  parseSignedRevocationList,
  signRevocationList,
  thumbprintOf,
  toPublicJwk,
  withRevocation,
  type RevocationEntry,
} from '../../../services/core/credentials/index.js';
import { action, printJson } from '../../cli-support.js';
import { readKey } from './files.js';
import { writeOut } from '../../printable.js';

interface RevokeFlags {
  jti?: string;
  thumbprint?: string;
  list: string;
  key: string;
  reason: string;
  issuer?: string;
  json?: boolean;
}

/** Registers `fedlab cred revoke`. */
export function registerCredRevoke(cred: Command): void {
  cred
    .command('revoke')
    .description('add a credential (or a key) to your signed revocation list file, creating it if needed')
    .option('--jti <id>', 'the credential id to revoke (see `fedlab cred inspect`)')
    .option('--thumbprint <kid>', 'revoke a key instead: its RFC 7638 thumbprint')
    .requiredOption('--list <file>', 'the revocation list file (a compact JWS signed with --key)')
    .requiredOption('--key <file>', "the list owner's private key (the issuer's)")
    .option('--reason <text>', 'why (kept in the list)', 'unspecified')
    .option('--issuer <urn>', "the owner's URN, recorded in a new list")
    .option('--json', 'print JSON')
    .action(
      action((flags: RevokeFlags) => {
        if ((flags.jti === undefined) === (flags.thumbprint === undefined))
          throw new InvalidArgumentError('give exactly one of --jti or --thumbprint');
        const key = readKey(flags.key);
        checkOutputFile(flags.list, { replace: true });
        let list;
        let text: string | undefined;
        try {
          text = readFileSync(flags.list, 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
        if (text === undefined) list = emptyRevocationList(key, flags.issuer);
        else {
          list = parseSignedRevocationList(text);
          if (list.kid !== thumbprintOf(toPublicJwk(key))) {
            throw new InvalidArgumentError(
              `${flags.list} is the list of key ${list.kid}${list.iss ? ` (${list.iss})` : ''}; sign it with that key`,
            );
          }
        }
        const time = Math.floor(Date.now() / 1000);
        const entry: RevocationEntry =
          flags.jti !== undefined
            ? { jti: flags.jti, reason: flags.reason, time }
            : { kid: flags.thumbprint as string, reason: flags.reason, time };
        const next = withRevocation(list, entry);
        if (next !== list || text === undefined) {
          // Replaced whole under an unpredictable name, never through a symbolic link.
          writeOutputFile(flags.list, `${signRevocationList(next, key)}\n`, { mode: 0o644, replace: true });
        }
        const what = flags.jti !== undefined ? `credential ${flags.jti}` : `key ${flags.thumbprint as string}`;
        if (flags.json)
          printJson({
            revoked: flags.jti ?? flags.thumbprint,
            list: flags.list,
            version: next.version,
            entries: next.entries.length,
            changed: next !== list,
          });
        else
          writeOut(
            next === list
              ? `${what} was already revoked (list version ${next.version})\n`
              : `revoked ${what}; ${flags.list} is now version ${next.version} with ${next.entries.length} entr${next.entries.length === 1 ? 'y' : 'ies'}\n`,
          );
      }),
    );
}
