/** `fedlab cred delegate`: the leaf of a chain delegated to the holder of a certificate. */
import type { Command } from 'commander';
import { delegate } from '../../../services/core/credentials/index.js';
import { action } from '../../cli-support.js';
import { repeatableList, splitList } from '../../flag-values.js';
import { readChainFile, readIdentity, readKey, writeChainOut } from './files.js';
import { credentialFields, type IssueFlags } from './issue-flags.js';

/** Registers `fedlab cred delegate`. */
export function registerCredDelegate(cred: Command): void {
  cred
    .command('delegate')
    .description('delegate the leaf of a chain to the holder of a certificate; prints the child chain')
    .requiredOption('--chain <file>', "the parent chain file ('-' for standard input)")
    .requiredOption('--key <file>', "your private key: the key the parent's leaf was issued to")
    .requiredOption('--subject-cert <file>', "the new holder's certificate")
    .option('--priv <list>', "privileges to pass on (default: all of the parent's)")
    .option('--target <urn>', "targets to pass on (default: the parent's; repeat or comma-separate)", repeatableList)
    .option('--dlg <n>', "further delegations allowed (default: the parent's minus one)")
    .option('--ttl <duration>', 'lifetime such as 12h or 7d (default: until the parent expires)')
    .option('--lim <list>', "resource caps, at most the parent's (e.g. slivers=10,mem_mb=512)")
    .option('--not-before <time>', 'start of validity (default now)')
    .option('--out <file>', 'write the chain file here (0600; an existing file is refused) instead of standard output')
    .option('--force', 'replace an existing --out file (never a symbolic link)')
    .action(
      action(async (flags: IssueFlags & { chain: string }) => {
        const parent = readChainFile(flags.chain);
        const key = readKey(flags.key);
        const subject = await readIdentity(flags.subjectCert);
        const issued = await delegate(parent, {
          key,
          subject: subject.urn,
          subjectKey: subject.jwk as never,
          ...(flags.priv !== undefined ? { privileges: splitList(flags.priv) } : {}),
          ...(flags.target !== undefined ? { targets: flags.target } : {}),
          ...credentialFields(flags),
        });
        writeChainOut(flags.out, issued.chain, flags.force === true);
      }),
    );
}
