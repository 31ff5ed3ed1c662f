/**
 * What `fedlab up` shows: every site with its nodes UP, the slice, and every
 * sliver's state with its service's state and last output line, gathered
 * from the MAs (ListNodes), the slice authority (GetSlice, as the provider)
 * and the service provider (GetDeployment, as its operator). Rendered as a
 * table (redrawn in place on a terminal) or as one plain line per change.
 */
import { status } from '@grpc/grpc-js';
import { isServiceError } from '../../services/core/rpc/client.js';
import { NodeHealth, OperationalState, type Sliver } from '../../services/generated/fedlab/v1/common.js';
import { DeploymentState, ServiceState, type Deployment } from '../../services/generated/fedlab/v1/service_provider.js';
import { SliceState, type Slice } from '../../services/generated/fedlab/v1/slice_authority.js';
import { printable } from '../printable.js';
import type { LocalFederation } from './federation.js';
import { tableLines } from '../text-table.js';
import { listHoldings, type Holdings } from './leftovers.js';

/** One site's line. */
export interface SiteStatus {
  readonly domain: string;
  readonly style: string;
  readonly address: string;
  readonly up: number;
  readonly total: number;
  /** Why the MA could not be asked, if it could not. */
  readonly error?: string;
}

/** One node as its MA sees it. */
export interface NodeStatus {
  readonly site: string;
  readonly name: string;
  readonly urn: string;
  readonly health: string;
}

/** A snapshot of the federation. */
export interface FederationStatus {
  readonly at: Date;
  readonly sites: readonly SiteStatus[];
  /** The deployment `fedlab up` made (or adopted). */
  readonly deployment?: Deployment;
  readonly slice?: Slice;
  /** Every node of every site (when the MAs answered). */
  readonly nodes?: readonly NodeStatus[];
  /** Every live deployment of the provider, `deployment` among them. */
  readonly deployments?: readonly Deployment[];
  /** Every live slice of the slice authority. */
  readonly slices?: readonly Slice[];
  /** Why the provider or the slice authority could not be asked. */
  readonly errors: readonly string[];
}

const short = (urn: string): string => urn.split(':').slice(-1)[0] ?? urn;
const enumName = (e: Record<string, string | number>, v: number, prefix: string): string => String(e[v] ?? v).replace(prefix, '');

/** The name of a sliver's operational state (READY, CONFIGURING, ...). */
export function opState(s: Sliver | undefined): string {
  return s ? enumName(OperationalState as unknown as Record<string, string | number>, s.operationalState, 'OPERATIONAL_STATE_') : '-';
}

/** Gathers a snapshot; a party that does not answer is reported, not thrown. */
export async function collectStatus(fed: LocalFederation, deployment: string | undefined): Promise<FederationStatus> {
  const errors: string[] = [];
  const nodes: NodeStatus[] = [];
  const sites = await Promise.all(
    fed.sites.map(async (s): Promise<SiteStatus> => {
      try {
        const seen = await fed.listNodes(s);
        for (const n of s.nodes) {
          const x = seen.find((m) => m.urn === n.urn);
          nodes.push({
            site: s.domain,
            name: n.name,
            urn: n.urn,
            health: x ? enumName(NodeHealth as unknown as Record<string, string | number>, x.health, 'NODE_HEALTH_') : '?',
          });
        }
        return {
          domain: s.domain,
          style: s.style,
          address: s.address,
          up: seen.filter((n) => n.health === NodeHealth.NODE_HEALTH_UP).length,
          total: s.nodes.length,
        };
      } catch (err) {
        for (const n of s.nodes) nodes.push({ site: s.domain, name: n.name, urn: n.urn, health: '?' });
        return {
          domain: s.domain,
          style: s.style,
          address: s.address,
          up: 0,
          total: s.nodes.length,
          error: (err as Error).message.split('\n')[0] ?? 'no answer',
        };
      }
    }),
  );
  nodes.sort((a, b) => fed.sites.findIndex((s) => s.domain === a.site) - fed.sites.findIndex((s) => s.domain === b.site));
  let holdings: Holdings = { deployments: [], slices: [] };
  try {
    holdings = await listHoldings(fed);
  } catch (err) {
    errors.push(`listing deployments and slices: ${(err as Error).message.split('\n')[0]}`);
  }
  let dep: Deployment | undefined;
  let slice: Slice | undefined;
  if (deployment && fed.sp) {
    try {
      dep = await fed.getDeployment(deployment);
    } catch (err) {
      // NOT_FOUND: the deployment is not recorded yet; anything else is worth showing.
      if (!isServiceError(err) || err.code !== status.NOT_FOUND) errors.push(`service provider: ${(err as Error).message.split('\n')[0]}`);
    }
    slice = holdings.slices.find((x) => x.urn === dep?.sliceUrn);
    if (dep?.sliceUrn && !slice) {
      const c = fed.saClient(fed.homePaths.sp, 5000);
      try {
        slice = (await c.getSlice({ sliceUrn: dep.sliceUrn })).slice;
      } catch (err) {
        errors.push(`slice authority: ${(err as Error).message.split('\n')[0]}`);
      } finally {
        c.close();
      }
    }
  }
  return {
    at: new Date(),
    sites,
    nodes,
    deployments: holdings.deployments,
    slices: holdings.slices,
    errors,
    ...(dep ? { deployment: dep } : {}),
    ...(slice ? { slice } : {}),
  };
}

/** One row per sliver: site, node, sliver, its state, the service's state, restarts, last output. */
export function sliverRows(s: FederationStatus): string[][] {
  const dep = s.deployment;
  if (!dep) return [];
  const slivers = new Map((s.slice?.slivers ?? []).map((x) => [x.urn, x]));
  return dep.targets.map((t) => [
    t.site,
    short(t.nodeUrn),
    short(t.sliverUrn),
    opState(slivers.get(t.sliverUrn)),
    enumName(ServiceState as unknown as Record<string, string | number>, t.serviceState, 'SERVICE_STATE_'),
    String(t.restarts),
    printable(t.lastOutput[t.lastOutput.length - 1] ?? (t.status?.reason || '')).slice(0, 60),
  ]);
}

/** A table; every cell printable (cells hold what servers, nodes and slivers said). */
function table(head: readonly string[], raw: readonly (readonly string[])[]): string[] {
  return tableLines(
    head,
    raw.map((r) => r.map(printable)),
  );
}

const depState = (d: Deployment): string =>
  enumName(DeploymentState as unknown as Record<string, string | number>, d.state, 'DEPLOYMENT_STATE_');
const sliceStateOf = (s: Slice | undefined): string =>
  s ? enumName(SliceState as unknown as Record<string, string | number>, s.state, 'SLICE_STATE_') : '?';
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** One row per deployment: name, state, slice and its state, slivers ready, services running, an output line. */
function deploymentRows(s: FederationStatus, deployments: readonly Deployment[]): string[][] {
  const slices = new Map([...(s.slices ?? []), ...(s.slice ? [s.slice] : [])].map((x) => [x.urn, x]));
  return deployments.map((d) => {
    const slice = slices.get(d.sliceUrn);
    const ready = d.targets.filter(
      (t) => slice?.slivers.find((x) => x.urn === t.sliverUrn)?.operationalState === OperationalState.OPERATIONAL_STATE_READY,
    ).length;
    const running = d.targets.filter((t) => t.serviceState === ServiceState.SERVICE_STATE_RUNNING).length;
    const last = d.targets.map((t) => t.lastOutput[t.lastOutput.length - 1]).filter(Boolean)[0] ?? '';
    return [
      d.name,
      `${depState(d)}${d.error ? `: ${d.error}` : ''}`.slice(0, 40),
      d.sliceUrn ? `${short(d.sliceUrn)} ${sliceStateOf(slice)}` : '-',
      `${ready}/${d.targets.length}`,
      `${running}/${d.targets.length}`,
      last.slice(0, 40),
    ];
  });
}

/** One row per node: its site, name and health, and what holds it (each slice's sliver on it, with its state). */
function nodeRows(s: FederationStatus): string[][] {
  const slices = [...(s.slices ?? [])];
  if (s.slice && !slices.some((x) => x.urn === s.slice?.urn)) slices.push(s.slice);
  const deps = s.deployments?.length ? s.deployments : s.deployment ? [s.deployment] : [];
  return (s.nodes ?? []).map((n) => {
    const held = slices.flatMap((sl) => sl.slivers.filter((x) => x.nodeUrn === n.urn).map((x) => `${short(sl.urn)} ${opState(x)}`));
    const target = deps.flatMap((d) => d.targets).find((t) => t.nodeUrn === n.urn);
    return [
      n.site,
      n.name,
      n.health,
      held.join(', ') || 'free',
      target ? enumName(ServiceState as unknown as Record<string, string | number>, target.serviceState, 'SERVICE_STATE_') : '-',
      (target?.lastOutput[target.lastOutput.length - 1] ?? '').slice(0, 50),
    ];
  });
}

/** The whole view, as lines: the sites, every deployment, the slices no deployment has, and every node with what holds it. */
export function renderStatus(s: FederationStatus, title: string): string[] {
  const out = [`${title}   ${s.at.toISOString().slice(11, 19)} UTC`, ''];
  out.push(
    ...table(
      ['SITE', 'STYLE', 'MA', 'NODES UP'],
      s.sites.map((x) => [x.domain, x.style, x.address, x.error ? `? (${printable(x.error).slice(0, 50)})` : `${x.up}/${x.total}`]),
    ),
  );
  out.push('');
  const deps = [...(s.deployments ?? [])];
  if (s.deployment && !deps.some((d) => d.name === s.deployment?.name)) deps.unshift(s.deployment);
  if (deps.length)
    out.push(...table(['DEPLOYMENT', 'STATE', 'SLICE', 'SLIVERS READY', 'SERVICE RUNNING', 'LAST OUTPUT'], deploymentRows(s, deps)));
  else out.push('no deployment yet');
  const bare = (s.slices ?? []).filter((x) => !deps.some((d) => d.sliceUrn === x.urn));
  if (bare.length) {
    out.push('');
    out.push(
      ...table(
        ['SLICE (no deployment)', 'STATE', 'SLIVERS'],
        bare.map((x) => [short(x.urn), sliceStateOf(x), plural(x.slivers.length, 'sliver')]),
      ),
    );
  }
  if (s.nodes?.length) {
    out.push('');
    out.push(...table(['SITE', 'NODE', 'HEALTH', 'HELD BY', 'SERVICE', 'LAST OUTPUT'], nodeRows(s)));
  } else if (s.deployment) {
    out.push('');
    out.push(...table(['SITE', 'NODE', 'SLIVER', 'STATE', 'SERVICE', 'RESTARTS', 'LAST OUTPUT'], sliverRows(s)));
  }
  for (const e of s.errors) out.push(`! ${printable(e)}`);
  return out;
}

/** One plain line (for logs and pipes): sites, then the deployment and its slivers in short. */
export function statusLine(s: FederationStatus): string {
  const sites = s.sites.map((x) => `${x.domain} ${x.error ? '?' : `${x.up}/${x.total}`} up`).join(', ');
  const dep = s.deployment;
  if (!dep) return printable(`${s.at.toISOString()} ${sites}; no deployment${s.errors.length ? `; ${s.errors.join('; ')}` : ''}`);
  const running = dep.targets.filter((t) => t.serviceState === ServiceState.SERVICE_STATE_RUNNING).length;
  const last = dep.targets.map((t) => t.lastOutput[t.lastOutput.length - 1]).filter(Boolean)[0] ?? '';
  const others = (s.deployments ?? [])
    .filter((d) => d.name !== dep.name)
    .map(
      (d) =>
        `${d.name} ${depState(d)} ${d.targets.filter((t) => t.serviceState === ServiceState.SERVICE_STATE_RUNNING).length}/${d.targets.length}`,
    );
  return printable(
    `${s.at.toISOString()} ${sites}; ${dep.name} ${depState(dep)}, service running on ${running}/${plural(dep.targets.length, 'sliver')}${others.length ? `; also ${others.join(', ')}` : ''}${last ? `; e.g. "${printable(last).slice(0, 60)}"` : ''}`,
  );
}

/**
 * Whether everything is ready: every site's nodes UP, the deployment READY,
 * every sliver READY with its service RUNNING and printing. Otherwise what is not.
 */
export function readiness(s: FederationStatus, expectedSlivers: number): { ready: boolean; problems: string[] } {
  const problems: string[] = [];
  for (const x of s.sites) if (x.error || x.up < x.total) problems.push(`${x.domain}: ${x.error ?? `${x.up}/${x.total} nodes UP`}`);
  const dep = s.deployment;
  if (!dep) problems.push('no deployment');
  else {
    if (dep.state !== DeploymentState.DEPLOYMENT_STATE_READY)
      problems.push(
        `deployment ${dep.name} is ${enumName(DeploymentState as unknown as Record<string, string | number>, dep.state, 'DEPLOYMENT_STATE_')}${dep.error ? `: ${dep.error}` : ''}`,
      );
    if (dep.targets.length < expectedSlivers) problems.push(`${dep.targets.length} of ${expectedSlivers} slivers`);
    const slivers = new Map((s.slice?.slivers ?? []).map((x) => [x.urn, x]));
    for (const t of dep.targets) {
      const st = slivers.get(t.sliverUrn);
      if (st?.operationalState !== OperationalState.OPERATIONAL_STATE_READY)
        problems.push(`${t.site} ${short(t.sliverUrn)}: sliver ${opState(st)}${st?.error ? ` (${st.error})` : ''}`);
      if (t.serviceState !== ServiceState.SERVICE_STATE_RUNNING) {
        problems.push(
          `${t.site} ${short(t.sliverUrn)}: service ${enumName(ServiceState as unknown as Record<string, string | number>, t.serviceState, 'SERVICE_STATE_')}${t.status?.reason ? ` (${t.status.reason})` : ''}`,
        );
      } else if (t.lastOutput.length === 0) {
        problems.push(`${t.site} ${short(t.sliverUrn)}: the service has printed nothing yet`);
      }
    }
  }
  for (const e of s.errors) problems.push(e);
  return { ready: problems.length === 0, problems };
}
