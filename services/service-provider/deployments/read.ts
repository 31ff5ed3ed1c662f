/** Reading deployments: one by name, and a page of them by name (GetDeployment, ListDeployments). */
import { InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { DeploymentState, type Deployment } from '../../generated/fedlab/v1/service_provider.js';
import type { DeploymentRecord } from '../records.js';
import { nameField } from '../validate.js';
import type { DeploymentStore } from './deployment-store.js';
import { deploymentStateToWire, deploymentToWire } from './to-wire.js';

/** Prefix of the names in page tokens (so a token of another kind is refused). */
const TOKEN_PREFIX = 'd:';

/** One deployment. */
export function getDeployment(records: DeploymentStore, name: string): Deployment {
  nameField('name', name);
  const rec = records.get(name);
  if (!rec) throw new NotFoundError(`no deployment ${name}; list them with ListDeployments`);
  return deploymentToWire(rec);
}

/** A page of deployments by name; UNSPECIFIED state: all but DELETED. */
export function listDeployments(records: DeploymentStore, pageSize: number, pageToken: string, state: DeploymentState): { deployments: Deployment[]; nextPageToken: string } {
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) throw new InvalidArgumentError('page_size must be 0 or more', { field: 'page_size' });
  const size = Math.min(pageSize || 100, 1000);
  let after = '';
  if (pageToken) {
    const text = Buffer.from(pageToken, 'base64url').toString();
    if (!text.startsWith(TOKEN_PREFIX)) throw new InvalidArgumentError('page_token is not one this provider gave out; start again with an empty token', { field: 'page_token' });
    after = text.slice(TOKEN_PREFIX.length);
  }
  const names = records.names().sort().filter((n) => n > after);
  const out: DeploymentRecord[] = [];
  let last = '';
  let more = false;
  for (const n of names) {
    const rec = records.get(n) as DeploymentRecord;
    const keep = state === DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED ? rec.state !== 'deleted' : deploymentStateToWire(rec.state) === state;
    if (!keep) continue;
    if (out.length === size) {
      more = true;
      break;
    }
    out.push(rec);
    last = n;
  }
  return { deployments: out.map(deploymentToWire), nextPageToken: more ? Buffer.from(`${TOKEN_PREFIX}${last}`).toString('base64url') : '' };
}
