/** `fedlab cred issue`: a root credential, signed with your key, to the holder of a certificate. */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { identityFromCertificate, parseCertificate } from '../../../services/core/identity/certificate.js';
import { issueRoot, LIMIT_KEYS } from '../../../services/core/credentials/index.js';
import { action } from '../../cli-support.js';
import { repeatableList, splitList } from '../../flag-values.js';
import { readIdentity, readKey, writeChainOut } from './files.js';
import { credentialFields, type IssueFlags } from './issue-flags.js';

/** The issuer's URN for a root: from --issuer-cert, or the cert.pem beside the key (as `fedlab certs issue` lays them out). */
async function issuerUrn(keyFile: string, issuerCert: string | undefined, key: ReturnType<typeof readKey>): Promise<string> {
  const certFile = issuerCert ?? join(dirname(keyFile), 'cert.pem');
  let cert: X509Certificate;
  try {
    cert = parseCertificate(readFileSync(certFile), certFile);
  } catch (err) {
    if (issuerCert === undefined) {
      throw new InvalidArgumentError(
        `cannot tell who issues: no certificate beside ${basename(keyFile)} (${certFile}); give --issuer-cert`,
      );
    }
    throw err;
  }
  if (!cert.publicKey.equals(createPublicKey(key))) throw new InvalidArgumentError(`${certFile} does not certify the key in ${keyFile}`);
  return (await identityFromCertificate(cert)).urn;
}

/** Registers `fedlab cred issue`. */
export function registerCredIssue(cred: Command): void {
  cred
    .command('issue')
    .description('issue a root credential, signed with your key, to the holder of a certificate')
    .requiredOption('--key <file>', "the issuer's private key (PEM); its certificate is looked up as cert.pem beside it")
    .requiredOption('--subject-cert <file>', "the holder's certificate (its URN and key go into the credential)")
    .requiredOption(
      '--target <urn>',
      'target: an exact URN, urn:fedlab:<domain>:<kind>:* or urn:fedlab:<domain>:* (repeat or comma-separate)',
      repeatableList,
    )
    .requiredOption('--priv <list>', 'privileges, comma-separated (e.g. sliver.create,sliver.delete)')
    .option('--dlg <n>', 'how many more delegations may follow (default 0)')
    .option('--ttl <duration>', 'lifetime such as 12h, 30d, 2w (default 30d)')
    .option('--lim <list>', `resource caps, e.g. slivers=10,mem_mb=512 (keys: ${LIMIT_KEYS.join(', ')})`)
    .option('--issuer-cert <file>', "the issuer's certificate, when it is not cert.pem beside the key")
    .option('--not-before <time>', 'start of validity (RFC 3339 or epoch seconds; default now)')
    .option('--out <file>', 'write the chain file here (0600; an existing file is refused) instead of standard output')
    .option('--force', 'replace an existing --out file (never a symbolic link)')
    .action(
      action(async (flags: IssueFlags) => {
        const key = readKey(flags.key);
        const issuer = await issuerUrn(flags.key, flags.issuerCert, key);
        const subject = await readIdentity(flags.subjectCert);
        const issued = await issueRoot({
          key,
          issuer,
          subject: subject.urn,
          subjectKey: subject.jwk as never,
          targets: flags.target ?? [],
          privileges: splitList(flags.priv),
          ...credentialFields(flags),
        });
        writeChainOut(flags.out, issued.chain, flags.force === true);
      }),
    );
}
