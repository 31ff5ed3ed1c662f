/**
 * The backup file `fedlab backup` writes and `fedlab restore` reads: a
 * first line `fedlab-backup 1`, a JSON header line (whose store, which role,
 * when), the entries framed as in {@link frameEntry}, an end marker (a key
 * length of 0xFFFFFFFF) and a JSON trailer line with the entry count and the
 * digest over the entries. A file is written beside its final name and
 * renamed into place only once complete and synced, so a file under the final
 * name is always whole; the reader checks count and digest before anything
 * is restored.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import { frameEntry, SnapshotDigest, type RawEntry } from './snapshot-digest.js';

const MAGIC = 'fedlab-backup 1';
const END = 0xffffffff;
/** Longest key or value accepted when reading (LevelDB values of Fedlab tables are far smaller). */
const MAX_FIELD = 256 * 1024 * 1024;

/** What a backup is of. */
export interface BackupHeader {
  readonly serviceUrn: string;
  readonly role: string;
  /** When the snapshot was taken (ISO 8601). */
  readonly takenAt: string;
  readonly softwareVersion: string;
}

/** How a complete backup ends. */
export interface BackupTrailer {
  readonly entryCount: number;
  readonly digest: string;
}

/** Writes a backup file: {@link BackupWriter.add} runs of entries, then {@link BackupWriter.finish}. */
export class BackupWriter {
  private readonly digest = new SnapshotDigest();

  private constructor(
    private readonly file: FileHandle,
    private readonly partial: string,
    readonly path: string,
  ) {}

  /** Starts a backup at `path`, which must not exist yet (a backup is never overwritten). */
  static async create(path: string, header: BackupHeader): Promise<BackupWriter> {
    if (existsSync(path)) throw new InvalidArgumentError(`${path} exists; a backup never overwrites a file — choose another --out`);
    if (!existsSync(dirname(path))) throw new InvalidArgumentError(`the folder of ${path} does not exist`);
    const partial = join(dirname(path), `.${basename(path)}.partial-${process.pid}`);
    const file = await open(partial, 'wx', 0o600);
    const w = new BackupWriter(file, partial, path);
    await file.write(`${MAGIC}\n${JSON.stringify(header)}\n`);
    return w;
  }

  /** Appends entries. */
  async add(run: readonly RawEntry[]): Promise<void> {
    if (run.length === 0) return;
    for (const e of run) this.digest.add(e);
    await this.file.write(Buffer.concat(run.map(frameEntry)));
  }

  /** Entries written so far. */
  get count(): number {
    return this.digest.count;
  }

  /**
   * Ends the file, checks it against what the sender says it sent, syncs it and moves it to its
   * final name. On a mismatch nothing is left behind and the error says so.
   */
  async finish(sent: BackupTrailer): Promise<BackupTrailer> {
    const trailer: BackupTrailer = { entryCount: this.digest.count, digest: this.digest.digest() };
    try {
      if (trailer.entryCount !== sent.entryCount || trailer.digest !== sent.digest) {
        throw new FailedPreconditionError(
          `the snapshot received does not match what the service sent (${trailer.entryCount} entries, ${trailer.digest}; sent ${sent.entryCount}, ${sent.digest}); nothing was written — try again`,
        );
      }
      const end = Buffer.alloc(4);
      end.writeUInt32BE(END);
      await this.file.write(Buffer.concat([end, Buffer.from(`${JSON.stringify(trailer)}\n`)]));
      await this.file.sync();
      await this.file.close();
      if (existsSync(this.path)) throw new InvalidArgumentError(`${this.path} appeared meanwhile; the backup is not moved over it`);
      await rename(this.partial, this.path);
      return trailer;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** Removes the partial file. */
  async abort(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await rm(this.partial, { force: true });
  }
}

/** Buffered sequential reads of a file. */
class FileCursor {
  private buf = Buffer.alloc(0);
  private eof = false;

  constructor(private readonly file: FileHandle) {}

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n && !this.eof) {
      const chunk = Buffer.alloc(Math.max(64 * 1024, n - this.buf.length));
      const { bytesRead } = await this.file.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) this.eof = true;
      else this.buf = Buffer.concat([this.buf, chunk.subarray(0, bytesRead)]);
    }
  }

  async bytes(n: number, what: string): Promise<Buffer> {
    await this.fill(n);
    if (this.buf.length < n) throw new InvalidArgumentError(`the backup file ends in the middle of ${what}: it is truncated`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async line(what: string, max = 1024 * 1024): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        const text = this.buf.subarray(0, nl).toString('utf8');
        this.buf = this.buf.subarray(nl + 1);
        return text;
      }
      if (this.eof || this.buf.length > max) throw new InvalidArgumentError(`the backup file has no complete ${what}`);
      await this.fill(this.buf.length + 1);
    }
  }

  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.buf.length === 0;
  }
}

/** A backup file opened for reading. */
export interface BackupFile {
  readonly header: BackupHeader;
  /**
   * Reads every entry (in runs), checks the count and digest against the trailer, and returns the
   * trailer; throws INVALID_ARGUMENT naming the problem for a file that is not whole.
   */
  read(onRun?: (run: RawEntry[]) => Promise<void>): Promise<BackupTrailer>;
}

/** Opens a backup file and reads its header (the entries are read by {@link BackupFile.read}, each time afresh). */
export async function openBackupFile(path: string): Promise<BackupFile> {
  const headerOf = async (file: FileHandle): Promise<{ cursor: FileCursor; header: BackupHeader }> => {
    const cursor = new FileCursor(file);
    const magic = await cursor.line('first line', 64).catch(() => '');
    if (magic !== MAGIC) throw new InvalidArgumentError(`${path} is not a fedlab backup (it does not start with "${MAGIC}")`);
    let header: BackupHeader;
    try {
      header = JSON.parse(await cursor.line('header')) as BackupHeader;
    } catch (err) {
      throw new InvalidArgumentError(`${path}: the header is not JSON (${(err as Error).message})`);
    }
    if (typeof header.serviceUrn !== 'string' || typeof header.role !== 'string')
      throw new InvalidArgumentError(`${path}: the header names no service`);
    return { cursor, header };
  };
  const withFile = async <T>(fn: (file: FileHandle) => Promise<T>): Promise<T> => {
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch (err) {
      throw new InvalidArgumentError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      return await fn(file);
    } finally {
      await file.close();
    }
  };
  const { header } = await withFile(headerOf);
  return {
    header,
    read: (onRun) =>
      withFile(async (file) => {
        const { cursor } = await headerOf(file);
        const digest = new SnapshotDigest();
        let run: RawEntry[] = [];
        for (;;) {
          const klen = (await cursor.bytes(4, 'an entry')).readUInt32BE();
          if (klen === END) break;
          if (klen > MAX_FIELD)
            throw new InvalidArgumentError(`${path}: entry ${digest.count + 1} has a key of ${klen} bytes: the file is damaged`);
          const key = Buffer.from(await cursor.bytes(klen, 'a key'));
          const vlen = (await cursor.bytes(4, 'an entry')).readUInt32BE();
          if (vlen > MAX_FIELD)
            throw new InvalidArgumentError(`${path}: entry ${digest.count + 1} has a value of ${vlen} bytes: the file is damaged`);
          const value = Buffer.from(await cursor.bytes(vlen, 'a value'));
          const entry = { key, value };
          digest.add(entry);
          run.push(entry);
          if (run.length >= 1000) {
            await onRun?.(run);
            run = [];
          }
        }
        if (run.length > 0) await onRun?.(run);
        let trailer: BackupTrailer;
        try {
          trailer = JSON.parse(await cursor.line('trailer')) as BackupTrailer;
        } catch (err) {
          throw new InvalidArgumentError(`${path}: the trailer is missing or not JSON (${(err as Error).message}): the file is incomplete`);
        }
        if (!(await cursor.atEnd())) throw new InvalidArgumentError(`${path}: there are bytes after the trailer: the file is damaged`);
        const got = digest.digest();
        if (trailer.entryCount !== digest.count || trailer.digest !== got) {
          throw new InvalidArgumentError(
            `${path}: the entries do not match the trailer (${digest.count} entries, ${got}; the trailer says ${trailer.entryCount}, ${trailer.digest}): the file is damaged`,
          );
        }
        return trailer;
      }),
  };
}
