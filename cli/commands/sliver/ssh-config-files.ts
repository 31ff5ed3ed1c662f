/**
 * The SSH client files of a slice, as `fedlab sliver ssh-config` and `fedlab up` write them: the
 * ssh_config blocks and the known_hosts lines from the slice's manifest (ssh-config-render.ts), and
 * writing them the safe way (never through a symbolic link, created exclusively where new, an
 * existing file replaced only when asked; certs/output-file.ts), mode 0644.
 */
import { writeOutputFile } from '../../../certs/output-file.js';
import type { Slice } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { CliExit, EXIT_FAILURE } from '../../cli-support.js';
import {
  knownHostsLines,
  renderSshConfig,
  sshHostsOf,
  type SkippedSliver,
  type SshConfigOptions,
  type SshHost,
} from './ssh-config-render.js';

/** What a slice's SSH files hold. */
export interface SshFiles {
  readonly hosts: readonly SshHost[];
  readonly skipped: readonly SkippedSliver[];
  readonly config: string;
  readonly knownHosts: readonly string[];
}

/** The slice's SSH files; a slice with no sliver one can log in to is a failure (exit 1) naming why, before anything is written. */
export function sshFilesFor(slice: Slice, options: SshConfigOptions = {}): SshFiles {
  const { hosts, skipped } = sshHostsOf(slice);
  if (hosts.length === 0) {
    const why = skipped.length ? skipped.map((s) => `${s.sliverUrn}: ${s.reason}`).join('\n  ') : 'it has no slivers';
    throw new CliExit(EXIT_FAILURE, `slice ${slice.urn} has no sliver with an SSH login:\n  ${why}`);
  }
  return { hosts, skipped, config: renderSshConfig(slice.urn, hosts, options), knownHosts: knownHostsLines(hosts) };
}

/** Writes a file of the SSH client (known_hosts or ssh_config), 0644; an existing one only with `replace`. */
export function writeSshClientFile(file: string, text: string, replace: boolean, replaceFlag = '--force'): void {
  writeOutputFile(file, text, { mode: 0o644, replace, replaceFlag });
}
