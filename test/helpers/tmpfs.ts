// A small tmpfs the test mounts itself, to fill a service's disk for real (root only).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A mounted tmpfs and the handles a disk-full test needs. */
export interface Tmpfs {
  readonly dir: string;
  /** Writes a filler file until the file system is full (or `leaveBytes` remain). */
  fill(leaveBytes?: number): void;
  /** Removes the filler file. */
  free(): void;
  unmount(): void;
}

/** Why tmpfs tests cannot run here, or undefined when they can. */
export function tmpfsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  try {
    const probe = mountTmpfs(64);
    probe.unmount();
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs: ${(err as Error).message}`;
  }
}

/** Mounts a tmpfs of `sizeKb` KiB on a fresh temporary directory. */
export function mountTmpfs(sizeKb: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'fedlab-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  const filler = join(dir, 'filler');
  return {
    dir,
    fill(leaveBytes = 0) {
      const chunk = Buffer.alloc(4096);
      let written = 0;
      try {
        const fs = execFileSync('stat', ['-f', '-c', '%a %S', dir]).toString().trim().split(' ').map(Number);
        const free = (fs[0] ?? 0) * (fs[1] ?? 4096);
        written = Math.max(0, free - leaveBytes);
        writeFileSync(filler, Buffer.alloc(written));
      } catch {
        // Full before the size we asked for: append what still fits, a page at a time.
        for (;;) {
          try {
            writeFileSync(filler, chunk, { flag: 'a' });
          } catch {
            break;
          }
        }
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
