/**
 * SSH into the demo slice of a local federation: an Ed25519 key pair for the experimenter (the home
 * domain's member) kept under the up directory, its public key put on the slice with the member's
 * delegation, and an ssh_config and known_hosts written from the slice's manifest by the same code
 * as `fedlab sliver ssh-config` — so that the summary can print, per site, an `ssh -F` command that
 * works as printed.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeOutputFile } from '../../certs/output-file.js';
import { parseSshPublicKey, newSshKeyPair } from '../../services/core/identity/ssh-keys.js';
import { sshFilesFor, writeSshClientFile } from '../commands/sliver/ssh-config-files.js';
import type { SshHost } from '../commands/sliver/ssh-config-render.js';
import { linkPingLines } from './demo-links.js';
import type { LocalFederation } from './federation.js';

/** Where the SSH files of a local federation live. */
export function sshPaths(dir: string): { dir: string; key: string; publicKey: string; config: string; knownHosts: string } {
  const root = join(dir, 'ssh');
  return {
    dir: root,
    key: join(root, 'id_ed25519'),
    publicKey: join(root, 'id_ed25519.pub'),
    config: join(root, 'ssh_config'),
    knownHosts: join(root, 'known_hosts'),
  };
}

/** The experimenter's public key line, the pair made on first use (private key 0600, public 0644) and kept. */
export function experimenterKey(dir: string, comment: string): string {
  const p = sshPaths(dir);
  if (existsSync(p.key) && existsSync(p.publicKey)) return parseSshPublicKey(readFileSync(p.publicKey, 'utf8').trim(), p.publicKey).line;
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  const pair = newSshKeyPair({ comment });
  writeOutputFile(p.key, pair.private.endsWith('\n') ? pair.private : `${pair.private}\n`, { mode: 0o600, replace: true });
  writeOutputFile(p.publicKey, `${pair.public}\n`, { mode: 0o644, replace: true });
  return pair.public;
}

/**
 * Reads the slice at the slice authority (as the provider) and writes ssh_config and known_hosts
 * for its slivers; returns the hosts (none when no sliver has an SSH login, with the reason).
 */
export async function writeSshAccess(
  fed: LocalFederation,
  sliceUrn: string,
): Promise<{ hosts: readonly SshHost[]; pings?: readonly string[]; problem?: string }> {
  const p = sshPaths(fed.dir);
  const client = fed.saClient(fed.homePaths.sp, 10_000);
  const slice = (await client.getSlice({ sliceUrn })).slice;
  if (!slice) return { hosts: [], problem: `the slice authority answered without ${sliceUrn}` };
  let files;
  try {
    files = sshFilesFor(slice, { identityFile: p.key, knownHostsFile: p.knownHosts });
  } catch (err) {
    return { hosts: [], problem: (err as Error).message };
  }
  writeSshClientFile(p.knownHosts, `${files.knownHosts.join('\n')}\n`, true);
  writeSshClientFile(p.config, files.config, true);
  return { hosts: files.hosts, pings: linkPingLines(p.config, slice, files.hosts) };
}

/** The ready-to-paste command that logs in to `host` and runs `hostname; id` there. */
export function sshCommand(dir: string, host: SshHost): string {
  return `ssh -F ${sshPaths(dir).config} ${host.alias} 'hostname; id'`;
}

/** The summary's lines: per site, one ssh command into a sliver of the slice (or why there is none). */
export function sshUsageLines(fed: LocalFederation): string[] {
  const access = fed.sshAccess;
  if (!access) return [];
  if (access.hosts.length === 0) return [`  # no SSH login into the slivers: ${access.problem ?? 'none in the manifest'}`];
  const lines = ['  # log in to a sliver with OpenSSH, as the member (its key is on the slice; the host keys are pinned)'];
  const sites = [...new Set(access.hosts.map((h) => h.site))];
  for (const site of sites) {
    const h = access.hosts.find((x) => x.site === site) as SshHost;
    lines.push(`  ${sshCommand(fed.dir, h)}`);
  }
  if (access.pings?.length) lines.push("  # ping across the slice's links (each end logs in with OpenSSH as above)", ...access.pings);
  return lines;
}
