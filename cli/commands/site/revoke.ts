/** `fedlab site revoke`: a credential (by jti) or a key (by thumbprint) put on the site's revocation list. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { action, printJson } from '../../cli-support.js';
import { maClient, refused, withMaFlags, type MaFlags } from '../../remote.js';
import { writeOut } from '../../printable.js';

/** Registers `fedlab site revoke`. */
export function registerSiteRevoke(site: Command): void {
  withMaFlags(site.command('revoke').description("put a credential (by jti) or a key (by thumbprint) on the site's revocation list"))
    .option('--jti <id>', 'the credential to revoke (as `site delegate` printed it)')
    .option('--kid <thumbprint>', 'or the key to revoke (RFC 7638 thumbprint)')
    .option('--reason <text>', 'why (kept with the entry)', 'revoked by a site administrator')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: MaFlags & { jti?: string; kid?: string; reason: string; json?: boolean }) => {
        if (Boolean(flags.jti) === Boolean(flags.kid)) throw new InvalidArgumentError('give exactly one of --jti and --kid');
        const client = maClient(flags);
        try {
          const res = await client
            .revoke({ jti: flags.jti ?? '', keyThumbprint: flags.kid ?? '', reason: flags.reason })
            .catch((err: unknown) => refused(err, 'the management authority refused the revocation'));
          if (flags.json) printJson({ version: res.version, entry: res.entry });
          else
            writeOut(
              `revoked ${flags.jti ? `credential ${flags.jti}` : `key ${flags.kid}`}; the site's revocation list is at version ${res.version}\n`,
            );
        } finally {
          client.close();
        }
      }),
    );
}
