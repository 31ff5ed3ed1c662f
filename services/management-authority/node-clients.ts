/**
 * Calls to the site's node managers. One channel per node (opened on first
 * use, closed when the node's endpoint changes or it is the least recently
 * used beyond the pool size), the node's certificate pinned to its URN, and
 * every call showing the owner → MA chain the node enrolled with (the MA's
 * TLS certificate holds its leaf). Fan-out runs calls in parallel, bounded,
 * each with a deadline, and reports every node's result or failure reason.
 */
import { setMaxListeners } from 'node:events';
import { connectivityState, status as Status } from '@grpc/grpc-js';
import { createClient, type CallOpts, type PromiseClient } from '../core/rpc/client.js';
import { outcomeOf, type Result } from '../core/rpc/outcome.js';
import type { TlsMaterial } from '../core/rpc/server.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { NodeManagerService } from '../generated/fedlab/v1/node_manager.js';
import type { LiveNode, NodeRegistry } from './node-registry.js';

/** A node manager client. */
export type NmClient = PromiseClient<typeof NodeManagerService>;

/** One node's outcome. */
export type NodeResult<T> = { readonly nodeUrn: string } & Result<T>;

/** Options of {@link NodeClients}. */
export interface NodeClientsOptions {
  readonly tls: TlsMaterial;
  readonly registry: NodeRegistry;
  readonly log: Logger;
  readonly deadlineMs: number;
  readonly concurrency: number;
  readonly maxChannels: number;
  /** The clock heartbeats are timed with (the registry's); the system's by default. */
  readonly clock?: Clock;
  /** Extra grpc-js channel options of every node channel. */
  readonly channelOptions?: Record<string, string | number>;
}

/** Bounds of one fan-out. */
export interface FanOutOptions {
  /** Absolute deadline of the whole operation (the incoming call's), ms since the epoch. */
  readonly deadline?: number;
  readonly signal?: AbortSignal;
}

interface Channel {
  readonly endpoint: string;
  readonly client: NmClient;
  /** When it was opened (the heartbeat clock). */
  readonly openedAt: number;
}

/**
 * True when a channel waits out a reconnect backoff although its node heartbeated since it was opened.
 * A channel that failed to connect (the node was down) refuses every call at once until its backoff ends
 * (up to two minutes); a heartbeat proves the node is back, so a new channel serves the call instead.
 * At most one new channel per node per heartbeat, so a node that heartbeats but cannot be reached does
 * not make one per call.
 */
function isStale(channel: Channel, node: LiveNode): boolean {
  if ((node.lastHeartbeatAt ?? -Infinity) <= channel.openedAt) return false;
  return channel.client.raw.getChannel().getConnectivityState(false) === connectivityState.TRANSIENT_FAILURE;
}

/** The pool of node manager clients. */
export class NodeClients {
  private readonly channels = new Map<string, Channel>();
  private readonly clock: Clock;

  constructor(private readonly deps: NodeClientsOptions) {
    this.clock = deps.clock ?? systemClock;
  }

  private clientFor(node: LiveNode): NmClient {
    const nodeUrn = node.record.urn;
    const endpoint = node.endpoint;
    const cur = this.channels.get(nodeUrn);
    if (cur && cur.endpoint === endpoint && !isStale(cur, node)) {
      // Most recently used last: the first entry is the one to close when the pool is full.
      this.channels.delete(nodeUrn);
      this.channels.set(nodeUrn, cur);
      return cur.client;
    }
    if (cur) {
      cur.client.close();
      this.channels.delete(nodeUrn);
    }
    while (this.channels.size >= this.deps.maxChannels) {
      const [oldest, entry] = this.channels.entries().next().value as [string, { client: NmClient }];
      entry.client.close();
      this.channels.delete(oldest);
    }
    const client = createClient(NodeManagerService, {
      address: endpoint,
      tls: this.deps.tls,
      serverUrn: nodeUrn,
      deadlineMs: this.deps.deadlineMs,
      ...(this.deps.channelOptions ? { channelOptions: this.deps.channelOptions } : {}),
    });
    this.channels.set(nodeUrn, { endpoint, client, openedAt: this.clock.now() });
    return client;
  }

  /** Calls one node; never throws: failures come back as a result with the gRPC code and a reason naming the node. */
  async call<T>(
    nodeUrn: string,
    fn: (client: NmClient, opts: CallOpts) => Promise<T>,
    options: FanOutOptions = {},
  ): Promise<NodeResult<T>> {
    const node = this.deps.registry.get(nodeUrn);
    if (!node) return { nodeUrn, ok: false, code: Status.NOT_FOUND, reason: `node ${nodeUrn} is not enrolled at this site` };
    const left = options.deadline !== undefined && Number.isFinite(options.deadline) ? options.deadline - Date.now() - 100 : Infinity;
    const deadlineMs = Math.max(1, Math.min(this.deps.deadlineMs, left));
    let client: NmClient | undefined;
    try {
      client = this.clientFor(node);
      const value = await fn(client, { chain: node.record.ownerChain, deadlineMs, ...(options.signal ? { signal: options.signal } : {}) });
      return { nodeUrn, ok: true, value };
    } catch (err) {
      if (client) this.dropIfUnreachable(nodeUrn, client);
      const callee = {
        name: `node ${nodeUrn} (${node.endpoint})`,
        advice: 'it may be down — try again later or choose another node',
        deadlineMs,
      };
      return { nodeUrn, ok: false, ...outcomeOf(err, callee) };
    }
  }

  /**
   * Closes the node's pooled channel when it is the one this call used and it could not connect: grpc-js
   * would go on reconnecting it in the background (every 5 s at most, client.ts) for as long as it is
   * open — for a node that is gone, a refused connect every 5 s for good (1,000 such nodes: 200 a second,
   * 9–25 % of the MA's core in bench:ma). The node's next call opens a new channel: one connect per call.
   */
  private dropIfUnreachable(nodeUrn: string, client: NmClient): void {
    const cur = this.channels.get(nodeUrn);
    if (cur?.client !== client) return;
    if (client.raw.getChannel().getConnectivityState(false) !== connectivityState.TRANSIENT_FAILURE) return;
    client.close();
    this.channels.delete(nodeUrn);
  }

  /** Open channels (diagnostics and tests). */
  get openChannels(): number {
    return this.channels.size;
  }

  /** Calls many nodes in parallel (at most `concurrency` at once); results in the order of `items`. */
  async fanOut<I, T>(
    items: readonly I[],
    nodeOf: (item: I) => string,
    fn: (client: NmClient, opts: CallOpts, item: I) => Promise<T>,
    options: FanOutOptions = {},
  ): Promise<NodeResult<T>[]> {
    const out = new Array<NodeResult<T>>(items.length);
    let next = 0;
    // Every call in flight listens on the signal: they listen on one of this fan-out's own (allowed as many listeners
    // as calls run at once), which follows the caller's with a single listener — not on the caller's, which warns past 10.
    const parent = options.signal;
    const own = parent ? new AbortController() : undefined;
    const follow = (): void => own?.abort(parent?.reason);
    if (own && parent) {
      setMaxListeners(this.deps.concurrency + 1, own.signal);
      if (parent.aborted) follow();
      else parent.addEventListener('abort', follow, { once: true });
    }
    const opts: FanOutOptions = own ? { ...options, signal: own.signal } : options;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const i = next++;
        const item = items[i] as I;
        out[i] = await this.call(nodeOf(item), (c, o) => fn(c, o, item), opts);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.deps.concurrency, items.length) }, worker));
    } finally {
      parent?.removeEventListener('abort', follow);
    }
    return out;
  }

  /** Closes every channel. */
  close(): void {
    for (const { client } of this.channels.values()) client.close();
    this.channels.clear();
  }
}
