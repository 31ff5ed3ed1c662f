/**
 * `fedlab sliver ssh-config SLICE [--identity FILE] [--known-hosts FILE]`: reads the slice at its
 * slice authority and prints an OpenSSH config block per sliver with an SSH login, and the nodes'
 * host keys as known_hosts lines — written to --known-hosts (new, or replaced with --force; never
 * through a symbolic link; 0644), or printed after the blocks. Use it as
 * `fedlab sliver ssh-config S ... > s.conf; ssh -F s.conf <alias>`.
 * Exit codes: 0 done; 1 refused, unreachable, or no sliver has an SSH login; 2 bad input (nothing written).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { Command } from 'commander';
import { checkOutputFile } from '../../../certs/output-file.js';
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { action, printJson } from '../../cli-support.js';
import { writeErr, writeOut } from '../../printable.js';
import { refused } from '../../remote.js';
import { resolveSlice, saClient, withConn, type ConnFlags } from '../slice/sa-client.js';
import { sshFilesFor, writeSshClientFile } from './ssh-config-files.js';

interface SshConfigFlags extends ConnFlags {
  identity?: string;
  knownHosts?: string;
  force?: boolean;
}

/** Checks that `file` is a private key ssh can read (its first bytes), never holding on to it. */
export function checkIdentityFile(file: string): void {
  const head = Buffer.alloc(64);
  let n = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new InvalidArgumentError(`--identity ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const text = head.subarray(0, n).toString('latin1');
  if (/^(ssh-|ecdsa-)/.test(text))
    throw new InvalidArgumentError(`--identity ${file} is a public key; give the private key beside it (ssh signs with it)`);
  if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text))
    throw new InvalidArgumentError(`--identity ${file} is not an OpenSSH or PEM private key`);
}

/** Registers `fedlab sliver ssh-config`. */
export function registerSliverSshConfig(sliver: Command): void {
  withConn(
    sliver
      .command('ssh-config <slice>')
      .description("OpenSSH config blocks and known_hosts lines for logging in to a slice's slivers (from the slice authority)")
      .option('--identity <file>', 'your private key: IdentityFile (with IdentitiesOnly yes) in every block')
      .option('--known-hosts <file>', "write the nodes' host keys here (UserKnownHostsFile in every block) instead of printing them")
      .option('--force', 'replace an existing --known-hosts file (never a symbolic link)'),
  ).action(
    action(async (ref: string, flags: SshConfigFlags) => {
      // Bad input before any call: nothing is written.
      if (flags.identity !== undefined) checkIdentityFile(flags.identity);
      if (flags.knownHosts !== undefined) checkOutputFile(flags.knownHosts, { replace: flags.force === true });
      const client = saClient(flags);
      try {
        const urn = await resolveSlice(client, ref);
        const slice = (await client.getSlice({ sliceUrn: urn }).catch((err: unknown) => refused(err, `cannot read slice ${urn}`))).slice;
        if (!slice) throw new InvalidArgumentError(`the slice authority answered without slice ${urn}`);
        const files = sshFilesFor(slice, {
          ...(flags.identity !== undefined ? { identityFile: flags.identity } : {}),
          ...(flags.knownHosts !== undefined ? { knownHostsFile: flags.knownHosts } : {}),
        });
        if (flags.knownHosts !== undefined) writeSshClientFile(flags.knownHosts, `${files.knownHosts.join('\n')}\n`, flags.force === true);
        for (const s of files.skipped) writeErr(`fedlab: left out ${s.sliverUrn}: ${s.reason}\n`);
        if (flags.json) {
          printJson({
            slice: urn,
            config: files.config,
            known_hosts: files.knownHosts,
            ...(flags.knownHosts !== undefined ? { known_hosts_file: flags.knownHosts } : {}),
            hosts: files.hosts.map((h) => ({
              alias: h.alias,
              host: h.hostName,
              port: h.port,
              user: h.user,
              host_key_alias: h.hostKeyAlias,
              host_key_fingerprint: h.fingerprint,
              sliver: h.sliverUrn,
              node: h.nodeUrn,
            })),
            skipped: files.skipped.map((s) => ({ sliver: s.sliverUrn, reason: s.reason })),
          });
        } else if (flags.knownHosts !== undefined) {
          writeOut(files.config);
        } else {
          writeOut(
            `${files.config}\n# known_hosts lines of the nodes' host keys (add them to ~/.ssh/known_hosts, or use --known-hosts FILE):\n# ${files.knownHosts.join('\n# ')}\n`,
          );
        }
      } finally {
        client.close();
      }
    }),
  );
}
