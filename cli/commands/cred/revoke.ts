/**
 * `fedlab cred revoke`: a credential (or a key) added to your signed revocation list file. Each write
 * signs the list with `iat` now and `next_update` `--next-update-s` later (7 days by default): a
 * verifier holding the list refuses chains of its key once that has passed (plus its grace) without a
 * fresher list, so re-run revoke (or publish the list again) before then. `--next-update-s 0` writes a
 * list without `next_update`, which never goes stale (as lists did before). With `--expires`, the
 * entry carries the revoked credential's expiry and leaves the list at a later write once it passed.
 */
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
  type RevocationList,
} from '../../../services/core/credentials/index.js';
import { isExpiredEntry } from '../../../services/core/credentials/revocation.js';
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
  nextUpdateS: string;
  expires?: string;
  json?: boolean;
}

/** Default seconds from a written list's `iat` to its `next_update`. */
export const DEFAULT_FILE_NEXT_UPDATE_S = 7 * 86_400;

function nextUpdateSeconds(text: string): number {
  const n = Number(text);
  if (!/^[0-9]{1,9}$/.test(text) || (n !== 0 && n < 60))
    throw new InvalidArgumentError('--next-update-s must be whole seconds, 60 or more (0: a list that never goes stale)');
  return n;
}

function expirySeconds(text: string): number {
  const ms = /^[0-9]{1,12}$/.test(text) ? Number(text) * 1000 : Date.parse(text);
  if (!Number.isFinite(ms) || ms < 0)
    throw new InvalidArgumentError("--expires must be an ISO 8601 time or seconds since the epoch (the credential's exp)");
  return Math.ceil(ms / 1000);
}

/** The list without the entries of credentials that expired (their chains fail by time anyway). */
function compacted(list: RevocationList, nowS: number): RevocationList {
  const live = list.entries.filter((e) => !isExpiredEntry(e, nowS));
  return live.length === list.entries.length ? list : { ...list, entries: live };
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
    .option(
      '--next-update-s <seconds>',
      "verifiers refuse the key's chains this long after this write without a fresher list (0: never stale)",
      String(DEFAULT_FILE_NEXT_UPDATE_S),
    )
    .option('--expires <time>', "the revoked credential's exp (ISO 8601 or epoch seconds): the entry leaves the list after it")
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
        const nextUpdateS = nextUpdateSeconds(flags.nextUpdateS);
        const time = Math.floor(Date.now() / 1000);
        const exp = flags.expires !== undefined ? { exp: expirySeconds(flags.expires) } : {};
        const entry: RevocationEntry =
          flags.jti !== undefined
            ? { jti: flags.jti, reason: flags.reason, time, ...exp }
            : { kid: flags.thumbprint as string, reason: flags.reason, time, ...exp };
        const grown = withRevocation(list, entry);
        const next = compacted(grown, time);
        const validity = nextUpdateS > 0 ? { iat: time, nextUpdate: time + nextUpdateS } : undefined;
        // A stamped list is signed again at every run, so a repeat also refreshes its next_update.
        if (grown !== list || text === undefined || validity || next !== grown) {
          // Replaced whole under an unpredictable name, never through a symbolic link.
          writeOutputFile(flags.list, `${signRevocationList(next, key, validity)}\n`, { mode: 0o644, replace: true });
        }
        const what = flags.jti !== undefined ? `credential ${flags.jti}` : `key ${flags.thumbprint as string}`;
        if (flags.json)
          printJson({
            revoked: flags.jti ?? flags.thumbprint,
            list: flags.list,
            version: next.version,
            entries: next.entries.length,
            changed: grown !== list,
            ...(validity ? { next_update: new Date(validity.nextUpdate * 1000).toISOString() } : {}),
          });
        else
          writeOut(
            (grown === list
              ? `${what} was already revoked (list version ${next.version})\n`
              : `revoked ${what}; ${flags.list} is now version ${next.version} with ${next.entries.length} entr${next.entries.length === 1 ? 'y' : 'ies'}\n`) +
              (validity
                ? `the list holds until ${new Date(validity.nextUpdate * 1000).toISOString()}: sign it again before then (fedlab cred revoke)\n`
                : 'the list has no next_update: verifiers never take it as stale\n'),
          );
      }),
    );
}
