/**
 * Receiving an Admin.Snapshot stream: the header first, runs of entries, the
 * trailer last, checked against what arrived (count and digest). A stream
 * that breaks off, comes out of order or does not match is an error, never a
 * partial answer.
 */
import { UnavailableError } from '../errors.js';
import { createClient, type CallOpts, type ClientOptions, type PromiseClient } from '../rpc/client.js';
import { AdminService, type SnapshotHeader, type SnapshotResponse } from '../../generated/fedlab/v1/admin.js';
import { SnapshotDigest, type RawEntry } from './snapshot-digest.js';
import { tableOfKey } from './store-snapshot.js';

/** An Admin client. */
export type AdminClient = PromiseClient<typeof AdminService>;

/** An Admin client of one service. */
export function adminClient(options: ClientOptions): AdminClient {
  return createClient(AdminService, options);
}

/** What a complete snapshot stream held. */
export interface ReceivedSnapshot {
  readonly header: SnapshotHeader;
  readonly entryCount: number;
  readonly digest: string;
}

/** What to do with the parts of a snapshot as they arrive. */
export interface SnapshotHandlers {
  readonly onHeader?: (h: SnapshotHeader) => Promise<void> | void;
  readonly onRun?: (run: RawEntry[]) => Promise<void> | void;
}

/**
 * Reads a snapshot (every table when `tables` is empty), handing each run of entries to `onRun` as
 * it arrives; resolves once the trailer matched. `onHeader` runs before the first run. Leaving early
 * (a handler threw, a mismatch) cancels the stream, so the service stops sending at once.
 */
export async function receiveSnapshot(
  client: AdminClient,
  tables: readonly string[],
  handlers: SnapshotHandlers,
  opts: CallOpts = {},
): Promise<ReceivedSnapshot> {
  const done = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, done.signal]) : done.signal;
  try {
    return await consume(client.snapshot({ tables: [...tables] }, { ...opts, signal }), handlers);
  } finally {
    done.abort();
  }
}

/** Checks the order of the parts and the trailer against what arrived. */
async function consume(stream: AsyncIterable<SnapshotResponse>, handlers: SnapshotHandlers): Promise<ReceivedSnapshot> {
  const digest = new SnapshotDigest();
  let header: SnapshotHeader | undefined;
  for await (const msg of stream) {
    const part = msg.part;
    if (!part) continue;
    if (part.$case === 'header') {
      if (header) throw new UnavailableError('the snapshot stream sent two headers; try again');
      header = part.header;
      await handlers.onHeader?.(header);
    } else if (part.$case === 'entries') {
      if (!header) throw new UnavailableError('the snapshot stream sent entries before its header; try again');
      const run = part.entries.entries.map((e) => ({ key: e.key, value: e.value }));
      for (const e of run) digest.add(e);
      await handlers.onRun?.(run);
    } else {
      if (!header) throw new UnavailableError('the snapshot stream ended before its header; try again');
      const got = digest.digest();
      if (part.trailer.entryCount !== digest.count || part.trailer.digest !== got) {
        throw new UnavailableError(
          `the snapshot received (${digest.count} entries, ${got}) does not match what the service sent (${part.trailer.entryCount}, ${part.trailer.digest}); try again`,
        );
      }
      return { header, entryCount: digest.count, digest: got };
    }
  }
  throw new UnavailableError('the snapshot stream ended without its trailer (the service stopped or the connection broke); try again');
}

/** Reads the named tables of a service's store as of one snapshot: table → key → parsed JSON value. */
export async function readTables(
  client: AdminClient,
  tables: readonly string[],
  opts: CallOpts = {},
): Promise<{ header: SnapshotHeader; tables: Map<string, Map<string, unknown>> }> {
  const out = new Map<string, Map<string, unknown>>(tables.map((t) => [t, new Map()]));
  const got = await receiveSnapshot(
    client,
    tables,
    {
      onRun: (run) => {
        for (const e of run) {
          const at = tableOfKey(e.key);
          if (!at) continue;
          out.get(at.table)?.set(at.key, JSON.parse(e.value.toString('utf8')) as unknown);
        }
      },
    },
    opts,
  );
  return { header: got.header, tables: out };
}
