/**
 * The home domain's services of a local federation: every site's administrator delegates slice
 * creation to the slice authority (DelegateToSliceAuthority, idempotent on its request id), then the
 * slice authority and the service provider start, each with a config built from its schema.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { writeChainFile } from '../chain-file.js';
import type { LocalFederation } from './federation.js';
import { homeUrns } from './pki.js';
import { logFile } from './plan.js';
import { ServiceProcess } from './processes.js';
import { saConfigOf, spConfigOf } from './service-configs.js';
import { dashboardLines, saDashboard, sayMetricsAddresses } from './dashboards.js';

/** Every site delegates `MA → SA` to the home slice authority; the chains are written where the SA's config points. */
export async function delegateToSliceAuthority(fed: LocalFederation): Promise<void> {
  const saCert = readFileSync(`${fed.homePaths.sa}/cert.pem`, 'utf8');
  mkdirSync(`${fed.dir}/${fed.home}/chains`, { recursive: true, mode: 0o700 });
  for (const site of fed.sites) {
    const client = fed.maClient(site);
    try {
      const res = await client.delegateToSliceAuthority({
        requestId: `up-sa-${site.domain}`,
        sliceAuthorityUrn: homeUrns(fed.home).sa,
        sliceAuthorityJwk: '',
        sliceAuthorityCertificatePem: saCert,
        privileges: [],
        targets: [],
        limits: {},
        ttlS: 0,
        maxDelegations: 1,
      });
      writeChainFile(fed.chainFile(site.domain), res.chain, { replace: true });
    } finally {
      client.close();
    }
  }
  fed.say(`every site delegated slice creation to ${homeUrns(fed.home).sa}`);
}

/** Starts the slice authority (`fed.sa`). */
export async function startSliceAuthority(fed: LocalFederation): Promise<void> {
  const paths = fed.homePaths;
  const proc = fed.track(
    new ServiceProcess({
      name: `${fed.home} SA`,
      role: 'sa',
      configFile: paths.saConfig,
      logFile: logFile(fed.dir, `${fed.home}-sa`),
      fedlabArgs: fed.fedlabArgs,
    }),
  );
  fed.sa = proc;
  await fed.startOnFreePorts(proc, () => saConfigOf(fed).writeTo(paths.saConfig));
  fed.savePids();
  fed.say(`slice authority ${homeUrns(fed.home).sa} at ${fed.saAddress}`);
  const board = saDashboard(fed);
  if (board) for (const line of dashboardLines(board)) fed.say(line);
  sayMetricsAddresses(fed, [proc]);
}

/** Starts the service provider (`fed.sp`). */
export async function startServiceProvider(fed: LocalFederation): Promise<void> {
  const paths = fed.homePaths;
  const proc = fed.track(
    new ServiceProcess({
      name: `${fed.home} SP`,
      role: 'sp',
      configFile: paths.spConfig,
      logFile: logFile(fed.dir, `${fed.home}-sp`),
      fedlabArgs: fed.fedlabArgs,
    }),
  );
  fed.sp = proc;
  await fed.startOnFreePorts(proc, () => spConfigOf(fed).writeTo(paths.spConfig));
  fed.savePids();
  fed.say(`service provider ${homeUrns(fed.home).sp} at ${fed.spAddress}`);
  sayMetricsAddresses(fed, [proc]);
}
