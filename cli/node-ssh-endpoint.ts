/**
 * A node's SSH endpoint as its node manager will publish it, known before that node manager first
 * starts — what `fedlab up` and `fedlab node enroll --nm-config` name in EnrollNode so that the site
 * publishes the endpoint from the enrolment on, not only from the node's first heartbeat. A node
 * manager cannot be asked (GetNodeInfo) before it is enrolled: it serves with the certificate
 * EnrollNode returns. So the endpoint is derived with the node manager's own code from the config it
 * will start with: its SSH settings (the published `address`, else the listen host and a fixed port)
 * and its host key, made now by the node manager's loader at the file it will load (and keep) at its
 * start.
 */
import { nmConfigSchema, type NmConfig } from '../services/node-manager/config.js';
import { loadOrCreateHostKey } from '../services/node-manager/ssh/host-key.js';
import { splitHostPort, sshSettings } from '../services/node-manager/ssh/settings.js';
import type { SshEndpoint } from '../services/generated/fedlab/v1/common.js';
import { nmConfig, type NmConfigInput } from './kit/role-configs.js';

/**
 * The same node manager config with its SSH listen port fixed to `port` where it would pick one at
 * start (port 0); otherwise unchanged.
 */
export function withFixedSshPort(content: NmConfigInput, port: number): ReturnType<typeof nmConfig> {
  if (!content.ssh) return nmConfig(content);
  const { host, port: configured } = splitHostPort(content.ssh.listen);
  if (configured !== 0) return nmConfig(content);
  return nmConfig({ ...content, ssh: { ...content.ssh, listen: `${host.includes(':') ? `[${host}]` : host}:${port}` } });
}

/**
 * The SSH endpoint a node manager with this config will publish, or undefined when it serves no
 * SSH or its address is known only once it has bound a port (listen port 0 and no `address`).
 * Makes the node's host key when there is none yet.
 */
export function plannedSshEndpoint(content: NmConfigInput): SshEndpoint | undefined {
  return sshEndpointOf(nmConfigSchema.parse({ role: 'nm', ...content }));
}

/** {@link plannedSshEndpoint} of a compiled node manager config. */
export function sshEndpointOf(config: NmConfig): SshEndpoint | undefined {
  const settings = sshSettings(config);
  if (!settings) return undefined;
  const host = settings.listenHost.includes(':') ? `[${settings.listenHost}]` : settings.listenHost;
  const address = settings.address ?? (settings.listenPort > 0 ? `${host}:${settings.listenPort}` : undefined);
  if (!address) return undefined;
  const key = loadOrCreateHostKey(settings.hostKeyFile);
  return { address, hostKey: key.publicLine, hostKeyFingerprint: key.fingerprint };
}
