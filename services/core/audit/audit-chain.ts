/**
 * The audit log's records and their hash chain. Each record carries the
 * SHA-256 of the one before it (`prev`) and its own (`hash`, over its
 * canonical JSON without `hash`), so an edit, a deletion or a reordering of
 * any record breaks the chain at that record. Pruning keeps an anchor (the
 * hash of the last record removed), so the remaining chain still verifies.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical-json.js';

/** One audited call: who did what to which object, and how it ended. */
export interface AuditEntry {
  /** Milliseconds since the epoch. */
  readonly time: number;
  /** The RPC path, e.g. `/fedlab.v1.Aggregate/Allocate`. */
  readonly method: string;
  /** The caller's URN (from its TLS certificate). */
  readonly caller: string;
  /** The `jti` of every link of the credential chain the call carried, root first. */
  readonly jtis: readonly string[];
  /** The object the call named (a slice, sliver, node, deployment…), or ''. */
  readonly object: string;
  /** `committed` when the record went into the batch of the change itself; else the call's status code name. */
  readonly outcome: string;
  /** The rule a refusal named, or ''. */
  readonly rule: string;
}

/** A stored record: the entry, its place and its links in the chain. */
export interface AuditRecord extends AuditEntry {
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
}

/** Where the chain starts: the hash before the first record kept (all zeros before any pruning). */
export interface AuditAnchor {
  /** The sequence number of the first record kept. */
  readonly seq: number;
  readonly prev: string;
}

/** The hash of the empty chain. */
export const GENESIS = '0'.repeat(64);

/** The record that follows `prev` at `seq`. */
export function chainRecord(entry: AuditEntry, seq: number, prev: string): AuditRecord {
  const body = { ...entry, seq, prev };
  return { ...body, hash: createHash('sha256').update(canonicalJson(body)).digest('hex') };
}

/** Zero-padded, so keys sort as numbers. */
export function auditKey(seq: number): string {
  return String(seq).padStart(16, '0');
}

/** Why the chain does not verify at one record, or `ok`. */
export type ChainCheck =
  | { readonly ok: true; readonly records: number; readonly head: string }
  | { readonly ok: false; readonly seq: number; readonly key: string; readonly why: string };

/**
 * Walks stored records in key order from `anchor` and checks each: its key,
 * its sequence number, its link to the one before and its own hash.
 */
export async function verifyChain(records: AsyncIterable<[string, unknown]>, anchor: AuditAnchor): Promise<ChainCheck> {
  let expectSeq = anchor.seq;
  let prev = anchor.prev;
  let n = 0;
  for await (const [key, value] of records) {
    const r = value as Partial<AuditRecord> | null;
    const seq = typeof r?.seq === 'number' ? r.seq : NaN;
    if (key !== auditKey(expectSeq))
      return { ok: false, seq: expectSeq, key, why: `record ${expectSeq} is missing (the next key is ${key})` };
    if (seq !== expectSeq) return { ok: false, seq: expectSeq, key, why: `the record at key ${key} says it is record ${String(r?.seq)}` };
    if (r?.prev !== prev) return { ok: false, seq, key, why: `record ${seq} does not link to the record before it` };
    const { hash, ...body } = r as AuditRecord;
    let computed: string;
    try {
      computed = createHash('sha256').update(canonicalJson(body)).digest('hex');
    } catch {
      return { ok: false, seq, key, why: `record ${seq} is not a well-formed record` };
    }
    if (hash !== computed)
      return { ok: false, seq, key, why: `record ${seq} was changed after it was written (its hash does not match its content)` };
    prev = hash;
    expectSeq++;
    n++;
  }
  return { ok: true, records: n, head: prev };
}
