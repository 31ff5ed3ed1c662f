/** `fedlab node token`: a one-time enrolment token for a node. */
import type { Command } from 'commander';
import { action, printJson } from '../../cli-support.js';
import { parseDuration } from '../../flag-values.js';
import { maClient, refused, withMaFlags, type MaFlags } from '../../remote.js';
import { writeOut, writeErr } from '../../printable.js';

/** Registers `fedlab node token`. */
export function registerNodeToken(node: Command): void {
  withMaFlags(
    node.command('token').description('make a one-time enrolment token for a node (site administrators, or an owner for its own node)'),
  )
    .requiredOption('--name <name>', "the node's name ([a-z0-9][a-z0-9._-]{0,62}); its URN is urn:fedlab:<site>:node:<name>")
    .requiredOption('--owner <urn>', "the node owner's URN (who signs the owner → MA credential)")
    .option('--ttl <duration>', "how long the token is accepted, e.g. 1h or 2d (default: the site's, 24h)")
    .option('--request-id <id>', 'idempotency key; repeating it gives a fresh token for the same node (the old one stops working)')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: MaFlags & { name: string; owner: string; ttl?: string; requestId?: string; json?: boolean }) => {
        const ttlS = flags.ttl ? parseDuration(flags.ttl) : 0;
        const client = maClient(flags);
        try {
          const res = await client
            .createEnrollmentToken({
              requestId: flags.requestId ?? `cli-${flags.name}-${Date.now()}`,
              nodeName: flags.name,
              ownerUrn: flags.owner,
              ttlS,
            })
            .catch((err: unknown) => refused(err, 'the management authority refused the token'));
          if (flags.json) printJson({ token: res.token, node_urn: res.nodeUrn, expires_at: res.expiresAt?.toISOString() });
          else {
            // The token alone on stdout, so that TOKEN=$(fedlab node token ...) works; the rest for the person.
            writeOut(`${res.token}\n`);
            writeErr(`token for ${res.nodeUrn}, valid once until ${res.expiresAt?.toISOString()}; it is shown only now\n`);
          }
        } finally {
          client.close();
        }
      }),
    );
}
