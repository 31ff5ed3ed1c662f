// Which server of the attack federation answers a method: its address (the enrolment listener for the
// bearer of a token) and the store it keeps, so that a test can look at what a call changed.
import type { Store } from '../../services/core/store/store.js';
import type { AttackFederation } from './attack-federation.js';
import type { CallerClass, RightPrincipal } from './caller-classes.js';
import type { ApiMethod } from './descriptor-set.js';

/** The server a call goes to. */
export interface MethodTarget {
  readonly address: string;
  readonly store: Store;
}

/** Node manager calls go to node n1 (where slice main has its sliver); Federation and Admin to the MA. */
export function targetOf(fed: AttackFederation, method: ApiMethod, as: RightPrincipal, cls: CallerClass): MethodTarget {
  const maStore = fed.site.service?.store;
  const n1 = fed.nodes[0];
  const n1Store = n1?.service?.store;
  if (!maStore || !n1 || !n1Store) throw new Error('the attack federation runs its MA and node managers in this process');
  if (as === 'token' && (cls === 'right' || cls === 'noChain')) return { address: fed.site.enrolAddress, store: maStore };
  switch (method.service) {
    case 'NodeManager':
      return { address: n1.endpoint, store: n1Store };
    case 'SliceAuthority':
      return { address: fed.sa.address, store: fed.sa.service.store };
    case 'ServiceProvider':
      return { address: fed.sp.address, store: fed.sp.service.store };
    default:
      return { address: fed.site.address, store: maStore };
  }
}

/** Every store of the federation's home servers (MA, node managers, slice authority, provider). */
export function homeStores(fed: AttackFederation): Store[] {
  const stores = [fed.site.service?.store, ...fed.nodes.map((n) => n.service?.store), fed.sa.service.store, fed.sp.service.store];
  return stores.filter((s): s is Store => s !== undefined);
}
