/**
 * The demo deployment of a local federation, through the service provider as its operator: deploy a
 * command on every site, read it, give the home domain's member a credential on its slice (and the
 * experimenter's SSH key on it, with the ssh_config to log in), delete it.
 */
import { readFileSync } from 'node:fs';
import { SliceMode } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, type Deployment, type DeployResponse } from '../../services/generated/fedlab/v1/service_provider.js';
import { writeChainFile } from '../chain-file.js';
import { withClientIds, type DemoLinks } from './demo-links.js';
import type { LocalFederation } from './federation.js';
import { homeUrns } from './pki.js';
import { experimenterKey, writeSshAccess } from './ssh-access.js';
import { sleep } from '../../services/core/timing.js';

/** Options of {@link deploy}. */
export interface DeployOptions {
  /** Nodes per site (every node of each site by default). */
  readonly perSite?: number;
  /** Each progress event of the deploy stream. */
  readonly onEvent?: (event: DeployResponse) => void;
  /** Deadline of the deploy stream (120 s by default). */
  readonly timeoutMs?: number;
  /** Links to ask for with the slice (see demo-links.ts). */
  readonly links?: DemoLinks;
}

/**
 * The provider deploys `command` (a service it keeps running) on `perSite` nodes of every site; the
 * progress events go to `onEvent`. Resolves with the deployment once it reaches a stable state.
 */
export async function deploy(
  fed: LocalFederation,
  name: string,
  command: readonly string[],
  options: DeployOptions = {},
): Promise<Deployment | undefined> {
  const client = fed.spClient(fed.homePaths.operator, options.timeoutMs ?? 120_000);
  let last: Deployment | undefined;
  const stream = client.deploy({
    requestId: `up-${name}-run${fed.state.runs}`,
    name,
    spec: {
      sliceUrn: '',
      sliceAuthorityUrn: '',
      sliceName: name,
      mode: SliceMode.SLICE_MODE_ALL_OR_NOTHING,
      sites: fed.sites.map((s) => ({
        site: s.domain,
        request: {
          nodes: withClientIds({ nodeUrns: [], count: options.perSite ?? s.nodes.length, clientIds: [] }, s.domain, options.links),
          resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
          links: [...(options.links?.sites.get(s.domain)?.links ?? [])],
          exclusive: s.style === 'emulab',
          requestDocument: '',
          requestDocumentFormat: '',
        },
      })),
      ...(options.links?.stitched.length ? { stitchedLinks: { links: [...options.links.stitched] } } : {}),
      steps: [{ name: 'service', argv: [...command], env: {}, timeoutMs: 0, service: true }],
    },
  });
  for await (const event of stream) {
    options.onEvent?.(event);
    if (event.deployment) last = event.deployment;
  }
  return last;
}

/** The provider's view of a deployment (GetDeployment as the operator). */
export async function getDeployment(fed: LocalFederation, name: string): Promise<Deployment | undefined> {
  const client = fed.spClient(fed.homePaths.operator, 5000);
  try {
    return (await client.getDeployment({ name })).deployment;
  } finally {
    client.close();
  }
}

/**
 * Registers the home domain's member with the provider and has the provider delegate it exec and
 * read on a slice (`SP → member`) with the experimenter's SSH public key; writes the chain for
 * `fedlab sliver exec|logs`, then ssh_config and known_hosts for the slice's slivers
 * (`fed.sshAccess`). When the key cannot be given, the chain is still delegated, without it.
 */
export async function prepareMember(fed: LocalFederation, sliceUrn: string): Promise<string[]> {
  const client = fed.spClient(fed.homePaths.operator, 60_000);
  const member = homeUrns(fed.home).member;
  try {
    await client.addMember({
      requestId: 'up-member',
      memberUrn: member,
      certificatePem: readFileSync(`${fed.homePaths.member}/cert.pem`, 'utf8'),
      displayName: 'member',
    });
    const ask = (sshPublicKey: string, tag: string) =>
      client.delegateToMember({
        sshPublicKey,
        requestId: `up-member-${tag}-${sliceUrn.split(':').pop() ?? 'slice'}-${Date.now()}`,
        memberUrn: member,
        sliceUrn,
        privileges: ['sliver.exec', 'sliver.read'],
        targets: [],
        ttlS: 0,
        maxDelegations: 0,
      });
    let res;
    let problem: string | undefined;
    try {
      res = await ask(experimenterKey(fed.dir, `${member.split(':').pop() ?? 'member'}@fedlab-up`), 'ssh');
    } catch (err) {
      problem = `the member's SSH key could not be put on the slice (${(err as Error).message.split('\n')[0]})`;
      res = await ask('', 'exec');
    }
    writeChainFile(fed.memberChainFile, res.chain, { replace: true });
    fed.sshAccess = problem
      ? { hosts: [], problem }
      : await writeSshAccess(fed, sliceUrn).catch((err: unknown) => ({ hosts: [], problem: (err as Error).message }));
    return res.chain;
  } finally {
    client.close();
  }
}

/**
 * Deletes a deployment and its slice (so that nothing runs on any node), waiting until it is DELETED or
 * `timeoutMs` passed; `abort` (a forced stop) ends the waiting.
 */
export async function deleteDeployment(fed: LocalFederation, name: string, timeoutMs = 30_000, abort?: () => boolean): Promise<boolean> {
  const client = fed.spClient(fed.homePaths.operator, timeoutMs);
  const end = Date.now() + timeoutMs;
  try {
    for (;;) {
      const res = await client.deleteDeployment({ name, keepSlice: false });
      if (res.deployment?.state === DeploymentState.DEPLOYMENT_STATE_DELETED) return true;
      if (Date.now() > end || abort?.()) return false;
      await sleep(500);
    }
  } catch {
    return false;
  } finally {
    client.close();
  }
}
