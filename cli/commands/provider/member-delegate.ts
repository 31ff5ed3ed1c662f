/**
 * `fedlab member delegate`: a member's credential on a slice, written as the chain file `fedlab
 * sliver exec|logs` uses; with `--ssh-key FILE`, the member's SSH public key goes on the slice too
 * (the provider answers once the slice authority has it), so the member can log in to its slivers.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { checkOutputFile } from '../../../certs/output-file.js';
import { writeChainFile } from '../../chain-file.js';
import { action, printJson } from '../../cli-support.js';
import { parseDuration, parseWholeNumber, repeatable, splitList } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { readSshPublicKeyFile } from '../slice/ssh-key-file.js';
import { spClient, withSp, type SpFlags } from './provider-client.js';
import { counted, writeOut } from '../../printable.js';

interface DelegateFlags extends SpFlags {
  urn: string;
  slice: string;
  out: string;
  priv?: string;
  target: string[];
  ttl?: string;
  dlg?: string;
  requestId?: string;
  json?: boolean;
  force?: boolean;
  sshKey?: string;
}

/** Registers `fedlab member delegate`. */
export function registerMemberDelegate(member: Command): void {
  withSp(
    member.command('delegate').description('give a member a credential on a slice: writes the chain file for `fedlab sliver exec|logs`'),
  )
    .requiredOption('--urn <urn>', "the member's URN")
    .requiredOption('--slice <urn>', 'the slice')
    .requiredOption('--out <file>', 'where to write the chain (one compact JWS per line, root first; 0600; an existing file is refused)')
    .option('--force', 'replace an existing --out file (never a symbolic link)')
    .option('--priv <list>', "privileges, comma-separated (default: the provider's member default, sliver.exec,sliver.read)")
    .option('--target <urn>', 'a target: the slice or one of its slivers (repeatable; default: the slice)', repeatable, [])
    .option('--ttl <duration>', "lifetime, e.g. 1h (default: the provider's member default)")
    .option('--dlg <n>', 'how many more delegations may follow (default 0)')
    .option('--ssh-key <file>', "the member's SSH public key (.pub file): added to the slice's users, so the member can log in")
    .option('--request-id <id>', 'idempotency key (after a failure to reach the slice authority, retry with the same one)')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: DelegateFlags) => {
        // Before asking the provider, so that a refused --out or a bad key file is found first.
        checkOutputFile(flags.out, { replace: flags.force === true });
        const sshPublicKey = flags.sshKey !== undefined ? readSshPublicKeyFile(flags.sshKey).line : '';
        const client = spClient(flags);
        try {
          const res = await client
            .delegateToMember({
              sshPublicKey,
              requestId: flags.requestId ?? `cli-delegate-${randomBytes(6).toString('hex')}`,
              memberUrn: flags.urn,
              sliceUrn: flags.slice,
              privileges: splitList(flags.priv),
              targets: flags.target,
              limits: undefined,
              ttlS: flags.ttl ? parseDuration(flags.ttl) : 0,
              maxDelegations: parseWholeNumber(flags.dlg, '--dlg'),
            })
            .catch((err: unknown) => refused(err, 'the provider refused the delegation'));
          writeChainFile(flags.out, res.chain, { replace: flags.force === true });
          if (flags.json)
            printJson({ chain_file: flags.out, jti: res.jti, expires_at: res.expiresAt?.toISOString(), links: res.chain.length });
          else
            writeOut(
              `wrote ${flags.out}: ${counted(res.chain.length, 'link')}, credential ${res.jti}, valid until ${res.expiresAt?.toISOString()}\n`,
            );
        } finally {
          client.close();
        }
      }),
    );
}
