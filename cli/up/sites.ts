/**
 * The sites of a local federation: each site's management authority, its nodes enrolled the way a
 * site admin and node owner would (one-time token, owner → MA chain, EnrollNode for a fresh key; first
 * run only), its node managers, and the wait until the MA sees every node UP.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { privateKeyToPem, publicKeyToPem } from '../../services/core/identity/keys.js';
import { NodeHealth, SliverIsolation, type Node, type SshEndpoint } from '../../services/generated/fedlab/v1/common.js';
import { enrollNode, issueOwnerCredential } from '../../services/management-authority/enrolment-client.js';
import { writeOutputFile } from '../../certs/output-file.js';
import { writeChainFile } from '../chain-file.js';
import type { LocalFederation, SiteRuntime } from './federation.js';
import { siteUrns } from './pki.js';
import { logFile, nodePaths, sitePaths } from './plan.js';
import { freePort, ServiceProcess } from './processes.js';
import { plannedSshEndpoint, withFixedSshPort } from '../node-ssh-endpoint.js';
import { maConfigOf, nmConfigOf } from './service-configs.js';
import { dashboardCertificateNote, dashboardLines, sayMetricsAddresses, siteDashboard } from './dashboards.js';
import { pool, sleep } from '../../services/core/timing.js';
import { counted } from '../printable.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

/**
 * Starts every site's MA, enrols its nodes (first run only), starts the node managers and waits until
 * each MA sees all its nodes UP.
 */
export async function startSites(fed: LocalFederation): Promise<void> {
  fed.state = { ...fed.state, runs: fed.state.runs + 1 };
  fed.saveState();
  for (const plan of fed.state.sites) {
    const paths = sitePaths(fed.dir, plan.domain);
    const ma = fed.track(
      new ServiceProcess({
        name: `${plan.domain} MA`,
        role: 'ma',
        configFile: paths.maConfig,
        logFile: logFile(fed.dir, `${plan.domain}-ma`),
        fedlabArgs: fed.fedlabArgs,
      }),
    );
    fed.sites.push({
      plan,
      style: plan.style,
      domain: plan.domain,
      maUrn: siteUrns(plan.domain).ma,
      address: `localhost:${plan.ma_port}`,
      paths,
      ma,
      nodes: [],
    });
  }
  writeFileSync(fed.allCaFile, fed.state.sites.map((p) => readFileSync(`${sitePaths(fed.dir, p.domain).ca}/ca.pem`, 'utf8')).join(''));
  // MAs start in parallel: each process spends most of a second loading.
  fed.say(`starting ${fed.sites.length} management authorities`);
  await Promise.all(
    fed.sites.map((s) =>
      fed.startOnFreePorts(s.ma, () => {
        s.address = `localhost:${s.plan.ma_port}`;
        maConfigOf(fed, s.plan).writeTo(s.paths.maConfig);
      }),
    ),
  );
  fed.savePids();
  const boards = fed.sites.map(siteDashboard).filter((d) => d !== undefined);
  for (const d of boards) for (const line of dashboardLines(d)) fed.say(line);
  if (boards.length) fed.say(dashboardCertificateNote(fed));
  sayMetricsAddresses(
    fed,
    fed.sites.map((s) => s.ma),
  );
  // Nodes enrolled in this run: the SSH port each listens on at its first start, named in its enrolment.
  const sshPorts = new Map<string, number>();
  for (const site of fed.sites) {
    for (const node of site.plan.nodes) {
      const paths = nodePaths(fed.dir, site.domain, node.name);
      if (!existsSync(paths.cert)) {
        const sshPort = await freePort();
        const ssh = plannedSshEndpoint(withFixedSshPort(nmConfigOf(fed, site.plan, node).content, sshPort).content);
        if (ssh) sshPorts.set(paths.config, sshPort);
        await enrol(fed, site, node, ssh);
      }
      const proc = fed.track(
        new ServiceProcess({
          name: `${site.domain} node ${node.name}`,
          role: 'nm',
          configFile: paths.config,
          logFile: logFile(fed.dir, `${site.domain}-${node.name}`),
          fedlabArgs: fed.fedlabArgs,
        }),
      );
      site.nodes.push({ name: node.name, urn: siteUrns(site.domain).node(node.name), endpoint: `localhost:${node.port}`, paths, proc });
    }
  }
  if (!fed.state.complete) {
    fed.state = { ...fed.state, complete: true };
    fed.saveState();
  }
  const all = fed.sites.flatMap((s) => s.nodes);
  for (const site of fed.sites) for (const n of site.nodes) makeTraversable(fed, site, n.paths.root);
  fed.say(`starting ${all.length} node managers (${fed.driver.kind} driver)`);
  // A few at a time: a node manager's start is mostly CPU on this machine.
  await pool(all, 4, async (n) => {
    const site = fed.sites.find((x) => x.nodes.includes(n)) as SiteRuntime;
    const plan = site.plan.nodes.find((x) => x.name === n.name) as { name: string; port: number };
    const start = () =>
      fed.startOnFreePorts(n.proc, () => {
        // The node tells its MA its endpoint with every heartbeat, so a new port needs no re-enrolment.
        n.endpoint = `localhost:${plan.port}`;
        const config = nmConfigOf(fed, site.plan, plan);
        const sshPort = sshPorts.get(n.paths.config);
        (sshPort ? withFixedSshPort(config.content, sshPort) : config).writeTo(n.paths.config);
      });
    try {
      await start();
    } catch (err) {
      // The SSH port named at enrolment was taken meanwhile: the node picks one, and its heartbeats publish it.
      const sshPort = sshPorts.get(n.paths.config);
      if (!sshPort || !new RegExp(`(EADDRINUSE|in use).*:${sshPort}\\b`).test((err as Error).message)) throw err;
      sshPorts.delete(n.paths.config);
      fed.say(`the SSH port ${sshPort} of ${n.proc.options.name} was taken by another program; it picks another`);
      await start();
    }
  });
  fed.savePids();
  sayMetricsAddresses(
    fed,
    all.map((n) => n.proc),
  );
  await waitNodesUp(fed);
}

/**
 * A container sliver's root user (runc) must reach its bundle under the node's data directory, so
 * every directory on the way from the federation's is made traversable by others (mode 711: not
 * listable; the keys in them are 0600 themselves).
 */
function makeTraversable(fed: LocalFederation, site: SiteRuntime, nodeRoot: string): void {
  for (const dir of [fed.dir, site.paths.root, site.paths.nodes, nodeRoot]) chmodSync(dir, 0o711);
}

/**
 * Enrols one node as its owner would: admin token, owner → MA chain, EnrollNode for a fresh key, with
 * the SSH endpoint its node manager will publish (see node-ssh-endpoint.ts) when it is known before its start.
 */
async function enrol(fed: LocalFederation, site: SiteRuntime, node: { name: string; port: number }, ssh?: SshEndpoint): Promise<void> {
  const urns = siteUrns(site.domain);
  const paths = nodePaths(fed.dir, site.domain, node.name);
  const admin = fed.maClient(site);
  const { token } = await admin.createEnrollmentToken({ requestId: `up-${node.name}`, nodeName: node.name, ownerUrn: urns.owner, ttlS: 0 });
  const ownerKey = readFileSync(`${site.paths.owner}/key.pem`, 'utf8');
  const { chain } = await issueOwnerCredential({
    ownerKey: createPrivateKey(ownerKey),
    ownerUrn: urns.owner,
    maUrn: urns.ma,
    maKey: createPublicKey(readFileSync(`${site.paths.ma}/cert.pem`)),
    ttlSeconds: 180 * 86_400,
  });
  const keys = generateKeyPair('p256');
  const res = await enrollNode(
    { address: `localhost:${site.plan.enrol_port}`, caPem: readFileSync(`${site.paths.ca}/ca.pem`, 'utf8'), maUrn: urns.ma },
    {
      token,
      publicKeyPem: publicKeyToPem(keys.publicKey),
      csrPem: '',
      ownerCredentialChain: [...chain],
      endpoint: `localhost:${node.port}`,
      capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 2048, pids: 512, bandwidthKbps: 0 },
      isolation: fed.driver.kind === 'container' ? SliverIsolation.SLIVER_ISOLATION_CONTAINER : SliverIsolation.SLIVER_ISOLATION_PROCESS,
      version: '',
      netemAvailable: false,
      ...(ssh ? { ssh } : {}),
    },
  );
  mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  // The federation's own directory: a re-run replaces its files, never through a symbolic link.
  writeOutputFile(paths.key, privateKeyToPem(keys.privateKey), { mode: 0o600, replace: true });
  writeOutputFile(paths.cert, res.certificatePem, { mode: 0o644, replace: true });
  writeOutputFile(paths.ca, res.caChainPem.join(''), { mode: 0o644, replace: true });
  writeChainFile(paths.ownerChain, chain, { replace: true });
}

/** A site's nodes as its MA sees them. */
export async function listSiteNodes(fed: LocalFederation, site: SiteRuntime): Promise<Node[]> {
  const client = fed.maClient(site);
  try {
    const out: Node[] = [];
    let token = '';
    do {
      const page = await client.listNodes(
        { pageSize: 1000, pageToken: token, health: NodeHealth.NODE_HEALTH_UNSPECIFIED },
        { deadlineMs: 3000 },
      );
      out.push(...page.nodes);
      token = page.nextPageToken;
    } while (token);
    return out;
  } finally {
    client.close();
  }
}

/** Waits until every site's MA reports all its nodes UP. */
export async function waitNodesUp(fed: LocalFederation, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (const site of fed.sites) {
    for (;;) {
      const nodes = await listSiteNodes(fed, site).catch(() => [] as Node[]);
      const up = nodes.filter((n) => n.health === NodeHealth.NODE_HEALTH_UP).length;
      if (up >= site.nodes.length) break;
      if (Date.now() > end) {
        const down = site.nodes
          .filter((n) => !nodes.some((x) => x.urn === n.urn && x.health === NodeHealth.NODE_HEALTH_UP))
          .map((n) => n.name);
        throw new Error(
          `${site.domain}: nodes ${down.join(', ')} are not UP after ${Math.round(timeoutMs / 1000)} s; see their logs in ${fed.dir}/logs`,
        );
      }
      await sleep(200);
    }
    fed.say(`${site.domain} (${site.style}): ${counted(site.nodes.length, 'node')} UP`);
  }
}
