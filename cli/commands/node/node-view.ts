/** How `fedlab node ls` shows nodes: an aligned table for a person, JSON for scripts. */
import { NodeHealth, SliverIsolation, type Node } from '../../../services/generated/fedlab/v1/common.js';
import { table } from '../../text-table.js';

function ago(time: Date | undefined, now: number): string {
  if (!time) return 'never';
  const s = Math.max(0, Math.round((now - time.getTime()) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

const ISOLATION: Record<number, string> = {
  [SliverIsolation.SLIVER_ISOLATION_CONTAINER]: 'container',
  [SliverIsolation.SLIVER_ISOLATION_PROCESS]: 'process (no isolation)',
  [SliverIsolation.SLIVER_ISOLATION_SIMULATED]: 'simulated',
  [SliverIsolation.SLIVER_ISOLATION_NONE]: 'none (whole node)',
};

/** Renders nodes as an aligned text table. */
export function nodeTable(nodes: readonly Node[], now = Date.now()): string {
  const rows = nodes.map((n) => {
    const cap = n.capacity;
    const used = n.allocated;
    return [
      n.urn,
      n.health === NodeHealth.NODE_HEALTH_UP ? 'UP' : 'DOWN',
      n.endpoint,
      `${used?.cpuMillis ?? 0}/${cap?.cpuMillis ?? 0}`,
      `${used?.memMb ?? 0}/${cap?.memMb ?? 0}`,
      String(n.sliverCount),
      n.exclusive ? 'yes' : 'no',
      ISOLATION[n.isolation] ?? '?',
      ago(n.lastHeartbeatAt, now),
    ];
  });
  const head = ['NODE', 'HEALTH', 'ENDPOINT', 'CPU m (used/cap)', 'MEM MB (used/cap)', 'SLIVERS', 'WHOLE', 'ISOLATION', 'LAST HEARTBEAT'];
  return table(head, rows);
}

/** One node as JSON for scripts. */
export function nodeJson(n: Node): Record<string, unknown> {
  return {
    urn: n.urn,
    owner_urn: n.ownerUrn,
    health: n.health === NodeHealth.NODE_HEALTH_UP ? 'up' : 'down',
    endpoint: n.endpoint,
    capacity: n.capacity,
    allocated: n.allocated,
    usage: n.usage,
    sliver_count: n.sliverCount,
    exclusive: n.exclusive,
    isolation: ISOLATION[n.isolation] ?? 'unspecified',
    version: n.version,
    netem_available: n.netemAvailable,
    enrolled_at: n.enrolledAt?.toISOString(),
    last_heartbeat_at: n.lastHeartbeatAt?.toISOString() ?? null,
    missed_heartbeats: n.missedHeartbeats,
  };
}
