#!/usr/bin/env node
// Fails when the TypeScript sources import each other in a cycle (relative imports only).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const roots = ['services', 'certs', 'cli'];
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'generated' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) files.push(resolve(p));
  }
};
for (const r of roots) {
  try {
    walk(r);
  } catch {
    // a root that does not exist yet has no cycles
  }
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
const graph = new Map();
for (const f of files) {
  const src = readFileSync(f, 'utf8');
  const deps = new Set();
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    // Type-only imports vanish at run time, so they cannot form a cycle that matters at load.
    if (m[0].includes('import type') || m[0].includes('export type')) continue;
    const target = resolve(dirname(f), spec.replace(/\.js$/, '.ts'));
    if (files.includes(target)) deps.add(target);
  }
  graph.set(f, deps);
}

const state = new Map();
const stack = [];
const cycles = [];
const visit = (n) => {
  state.set(n, 1);
  stack.push(n);
  for (const d of graph.get(n) ?? []) {
    if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d]);
    else if (!state.has(d)) visit(d);
  }
  stack.pop();
  state.set(n, 2);
};
for (const f of files) if (!state.has(f)) visit(f);

if (cycles.length) {
  for (const c of cycles) process.stderr.write(`import cycle: ${c.map((p) => relative(process.cwd(), p)).join(' -> ')}\n`);
  process.exit(1);
}
process.stdout.write(`no import cycles in ${files.length} files\n`);
