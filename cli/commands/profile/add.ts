/** `fedlab profile add NAME`: saves the connection flags given under a name. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn } from '../../../services/core/identity/urn.js';
import { action, checkAddress, printJson } from '../../cli-support.js';
import { repeatable } from '../../flag-values.js';
import { writeOut } from '../../printable.js';
import { checkProfileName, profileJson, writeProfile, type Profile, type ProfileLocation } from '../../profiles.js';

interface AddFlags {
  sa?: string;
  saUrn?: string;
  sp?: string;
  spUrn?: string;
  ma?: string;
  maUrn?: string;
  tlsDir?: string;
  chain?: string[];
  ca?: string;
  sliverChain?: string;
  force?: boolean;
  json?: boolean;
}

function urn(value: string | undefined, flag: string): string | undefined {
  if (value !== undefined && !isUrn(value)) throw new InvalidArgumentError(`${flag} ${JSON.stringify(value)} is not a URN`);
  return value;
}

/** Registers `fedlab profile add`. */
export function registerProfileAdd(profile: Command, location: ProfileLocation): void {
  profile
    .command('add')
    .description('save connection flags as a named profile (paths are kept absolute)')
    .argument('<name>', 'the profile name')
    .option('--sa <host:port>', "the slice authority's address")
    .option('--sa-urn <urn>', "pin the slice authority's certificate to this URN")
    .option('--sp <host:port>', "the service provider's address")
    .option('--sp-urn <urn>', "pin the service provider's certificate to this URN")
    .option('--ma <host:port>', "a site's management authority (its aggregate) address")
    .option('--ma-urn <urn>', "pin the management authority's certificate to this URN")
    .option('--tls-dir <dir>', 'your key.pem, cert.pem and ca.pem')
    .option('--chain <file>', 'a credential chain file for `fedlab am` (repeatable; the first is the default)', repeatable)
    .option('--ca <file>', 'CA certificates to trust (PEM), the default --ca of the commands that take one')
    .option('--sliver-chain <file>', "a slice credential chain file, the default --chain of `fedlab sliver` (a member's)")
    .option('--force', 'replace a profile of the same name')
    .option('--json', 'print the profile as JSON')
    .action(
      action((name: string, flags: AddFlags) => {
        checkProfileName(name);
        const p: Profile = {
          ...(flags.sa ? { sa: checkAddress(flags.sa, '--sa') } : {}),
          ...(flags.saUrn ? { saUrn: urn(flags.saUrn, '--sa-urn') } : {}),
          ...(flags.sp ? { sp: checkAddress(flags.sp, '--sp') } : {}),
          ...(flags.spUrn ? { spUrn: urn(flags.spUrn, '--sp-urn') } : {}),
          ...(flags.ma ? { ma: checkAddress(flags.ma, '--ma') } : {}),
          ...(flags.maUrn ? { maUrn: urn(flags.maUrn, '--ma-urn') } : {}),
          ...(flags.tlsDir ? { tlsDir: flags.tlsDir } : {}),
          ...(flags.chain?.length ? { chains: flags.chain } : {}),
          ...(flags.ca ? { ca: flags.ca } : {}),
          ...(flags.sliverChain ? { sliverChain: flags.sliverChain } : {}),
        };
        if (Object.keys(p).length === 0)
          throw new InvalidArgumentError('give at least one of --sa, --sp, --ma, --tls-dir, --chain, --ca, --sliver-chain');
        const file = writeProfile(name, p, { ...location, replace: flags.force === true });
        if (flags.json) printJson({ name, file, profile: profileJson(p) });
        else writeOut(`profile ${name} saved in ${file}\n`);
      }),
    );
}
