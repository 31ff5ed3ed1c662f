/**
 * The dashboards of a local federation (every MA's and the slice authority's): where each listens, and
 * the one-time login link each service wrote to its `dashboard.login_link_file` at start (a new one
 * replaces it after each use), as lines for a person; and where each service serves its metrics.
 */
import { readFileSync } from 'node:fs';
import type { LocalFederation, SiteRuntime } from './federation.js';
import { homeUrns } from './pki.js';
import { sitePaths } from './plan.js';
import type { ServiceProcess } from './processes.js';

/** One dashboard of the federation. */
export interface UpDashboard {
  /** Whose it is, e.g. `plc.test MA`. */
  readonly name: string;
  readonly url: string;
  /** The file holding its current one-time login link. */
  readonly linkFile: string;
  /** The CA certificate that issued its TLS certificate (a browser does not know it). */
  readonly caFile: string;
}

/** A site MA's dashboard, when the plan gives it a port. */
export function siteDashboard(site: SiteRuntime): UpDashboard | undefined {
  const port = site.plan.dashboard_port;
  if (port === undefined) return undefined;
  return {
    name: `${site.domain} MA`,
    url: `https://127.0.0.1:${port}/`,
    linkFile: site.paths.maDashboardLink,
    caFile: `${site.paths.ca}/ca.pem`,
  };
}

/** The slice authority's dashboard, when the plan gives it a port. */
export function saDashboard(fed: LocalFederation): UpDashboard | undefined {
  const port = fed.state.sa_dashboard_port;
  if (port === undefined) return undefined;
  return {
    name: `slice authority ${homeUrns(fed.home).sa}`,
    url: `https://127.0.0.1:${port}/`,
    linkFile: fed.homePaths.saDashboardLink,
    caFile: `${sitePaths(fed.dir, fed.home).ca}/ca.pem`,
  };
}

/** Every dashboard of the federation: the MAs', then the slice authority's. */
export function dashboards(fed: LocalFederation): UpDashboard[] {
  return [...fed.sites.map(siteDashboard), saDashboard(fed)].filter((d): d is UpDashboard => d !== undefined);
}

/** The link in a dashboard's link file now ('' when there is none yet). */
export function currentLoginLink(d: UpDashboard): string {
  try {
    return readFileSync(d.linkFile, 'utf8').trim();
  } catch {
    return '';
  }
}

/** What to tell a person about a dashboard: its address and a one-time login link. */
export function dashboardLines(d: UpDashboard): string[] {
  const link = currentLoginLink(d);
  return [
    `dashboard of the ${d.name}: ${d.url}`,
    link
      ? `  log in once with ${link} (a new link is in ${d.linkFile} after each use; an administrator's client certificate also works)`
      : `  log in with an administrator's client certificate (no login link in ${d.linkFile})`,
  ];
}

/** The note about the dashboards' certificates, said once. */
export function dashboardCertificateNote(fed: LocalFederation): string {
  return `the dashboards' certificates are from each domain's own CA (e.g. ${sitePaths(fed.dir, fed.home).ca}/ca.pem): accept the browser's warning or import that CA`;
}

/** What a service logs once its metrics listener is up (core's metrics-listener.ts), with its address. */
const METRICS_LISTENING = 'metrics listening (GET /metrics)';

/** Says where each started service serves its metrics (`metrics.listen` in its config); nothing for one that serves none. */
export function sayMetricsAddresses(fed: LocalFederation, procs: readonly ServiceProcess[]): void {
  for (const p of procs) {
    const address = p.seen(METRICS_LISTENING)?.address;
    if (typeof address === 'string') fed.say(`metrics of the ${p.options.name}: http://${address}/metrics`);
  }
}
