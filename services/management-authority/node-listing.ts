/**
 * ListNodes: one page of the site's nodes in URN order, optionally only those
 * UP or DOWN, from the registry's sorted index.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { decodePageToken, encodePageToken, firstAfter } from '../core/paging.js';
import { pageSize } from '../core/validate.js';
import { NodeHealth, type Node } from '../generated/fedlab/v1/common.js';
import type { NodeRegistry } from './node-registry.js';

/** One page of nodes, optionally only those UP or DOWN. */
export function listNodes(
  registry: Pick<NodeRegistry, 'urns' | 'get' | 'toWire'>,
  req: { pageSize: number; pageToken: string; health: NodeHealth },
): { nodes: Node[]; nextPageToken: string } {
  const size = pageSize(req.pageSize);
  if (![NodeHealth.NODE_HEALTH_UNSPECIFIED, NodeHealth.NODE_HEALTH_UP, NodeHealth.NODE_HEALTH_DOWN].includes(req.health)) {
    throw new InvalidArgumentError('health must be UP, DOWN or unset', { field: 'health' });
  }
  const sorted = registry.urns;
  const after = decodePageToken('nodes', req.pageToken);
  const want = req.health === NodeHealth.NODE_HEALTH_UNSPECIFIED ? undefined : req.health === NodeHealth.NODE_HEALTH_UP;
  const qualifying = (urn: string) => {
    const n = registry.get(urn);
    return n && (want === undefined || n.up === want) ? n : undefined;
  };
  const out: Node[] = [];
  let i = firstAfter(sorted, after);
  let last = '';
  for (; i < sorted.length && out.length < size; i++) {
    const urn = sorted[i] as string;
    const n = qualifying(urn);
    if (!n) continue;
    out.push(registry.toWire(n));
    last = urn;
  }
  // Another page only if a later node would qualify.
  let more = false;
  for (; i < sorted.length && !more; i++) more = qualifying(sorted[i] as string) !== undefined;
  return { nodes: out, nextPageToken: more ? encodePageToken('nodes', last) : '' };
}
