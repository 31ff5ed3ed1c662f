/** Reading deployments: one by name, and a page of them by name (GetDeployment, ListDeployments). */
import { NotFoundError } from '../../core/errors.js';
import { decodePageToken, encodePageToken } from '../../core/paging.js';
import { pageSize } from '../../core/validate.js';
import { DeploymentState, type Deployment } from '../../generated/fedlab/v1/service_provider.js';
import type { DeploymentRecord } from '../records.js';
import { nameField } from '../validate.js';
import type { DeploymentStore } from './deployment-store.js';
import { deploymentStateToWire, deploymentToWire, forView, type DeploymentView } from './to-wire.js';

/** One deployment, as `view` may see it. */
export function getDeployment(records: DeploymentStore, name: string, view: DeploymentView): Deployment {
  nameField('name', name);
  const rec = records.get(name);
  if (!rec) throw new NotFoundError(`no deployment ${name}; list them with ListDeployments`);
  return forView(deploymentToWire(rec), view);
}

/** A page of deployments by name, as `view` may see them; UNSPECIFIED state: all but DELETED. */
export function listDeployments(
  records: DeploymentStore,
  requestedSize: number,
  pageToken: string,
  state: DeploymentState,
  view: DeploymentView,
): { deployments: Deployment[]; nextPageToken: string } {
  const size = pageSize(requestedSize);
  const after = decodePageToken('deployments', pageToken);
  const names = records
    .names()
    .sort()
    .filter((n) => n > after);
  const out: DeploymentRecord[] = [];
  let last = '';
  let more = false;
  for (const n of names) {
    const rec = records.get(n) as DeploymentRecord;
    const keep =
      state === DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED ? rec.state !== 'deleted' : deploymentStateToWire(rec.state) === state;
    if (!keep) continue;
    if (out.length === size) {
      more = true;
      break;
    }
    out.push(rec);
    last = n;
  }
  return {
    deployments: out.map((r) => forView(deploymentToWire(r), view)),
    nextPageToken: more ? encodePageToken('deployments', last) : '',
  };
}
