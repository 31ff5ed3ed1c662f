/**
 * The digest of a store snapshot: SHA-256 over every entry in order, each
 * framed as a 4-byte big-endian key length, the key, a 4-byte big-endian value
 * length and the value. The Snapshot stream's trailer and a backup file's
 * trailer carry it, so a reader knows it has every entry, unaltered.
 */
import { createHash, type Hash } from 'node:crypto';

/** One raw key and value of a LevelDB store. */
export interface RawEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** The framing of one entry (also the record format of a backup file). */
export function frameEntry(entry: RawEntry): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(entry.key.length);
  const mid = Buffer.alloc(4);
  mid.writeUInt32BE(entry.value.length);
  return Buffer.concat([head, entry.key, mid, entry.value]);
}

/** Counts entries and hashes their framing as they pass. */
export class SnapshotDigest {
  private readonly hash: Hash = createHash('sha256');
  private n = 0;

  /** Adds one entry. */
  add(entry: RawEntry): void {
    this.hash.update(frameEntry(entry));
    this.n += 1;
  }

  /** Entries added so far. */
  get count(): number {
    return this.n;
  }

  /** `sha256:<hex>` of everything added; call once, at the end. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}
