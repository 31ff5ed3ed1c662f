// The federation the chaos suite runs on: two sites (planetlab and protogeni style, each its own domain
// and CA) of two node managers each and the home domain's slice authority, every one a `fedlab serve`
// child process started by the same library as `fedlab up`, with the process driver (slivers are plain
// processes: the suite is about the control plane, and needs no root).
import { openFederation, type TestFederation } from '../helpers/federation.js';

/** Starts the chaos federation (sites, peering, delegations, slice authority). */
export async function startChaosFederation(
  o: { driver?: 'process' | 'container'; say?: (line: string) => void } = {},
): Promise<TestFederation> {
  const tf = await openFederation({
    sites: ['planetlab', 'protogeni'],
    nodes: 2,
    driver: o.driver ?? 'process',
    heartbeatMs: 500,
    logLevel: 'info',
    ...(o.say ? { say: o.say } : {}),
  });
  try {
    await tf.fed.startSites();
    await tf.fed.peerDomains();
    await tf.fed.delegateToSliceAuthority();
    await tf.fed.startSliceAuthority();
    return tf;
  } catch (err) {
    await tf.destroy();
    throw err;
  }
}
