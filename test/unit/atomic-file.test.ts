// The one whole-file replacement (services/core/atomic-file.ts): new content whole with its mode, a
// symlink at the target replaced rather than followed, and nothing left behind when the rename fails.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { replaceFileAtomically } from '../../services/core/atomic-file.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('replaceFileAtomically', () => {
  it('replaces the content whole, with the mode given', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-atomic-'));
    const file = join(dir, 'link');
    writeFileSync(file, 'old', { mode: 0o644 });
    await replaceFileAtomically(file, 'new\n', 0o600);
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['link']);
  });

  it('replaces a symlink at the target instead of writing through it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-atomic-'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep');
    symlinkSync(victim, join(dir, 'link'));
    await replaceFileAtomically(join(dir, 'link'), 'new', 0o600);
    expect(readFileSync(victim, 'utf8')).toBe('keep');
    expect(lstatSync(join(dir, 'link')).isSymbolicLink()).toBe(false);
  });

  it('leaves nothing behind and the target unchanged when the rename fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedlab-atomic-'));
    const target = join(dir, 'taken');
    mkdirSync(join(target, 'inside'), { recursive: true });
    await expect(replaceFileAtomically(target, 'new', 0o600)).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['taken']);
    expect(readdirSync(target)).toEqual(['inside']);
  });
});
