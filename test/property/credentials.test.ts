// Property tests over random delegation trees: a chain verifies exactly when every link is a true
// attenuation of its parent, and when it does not, the verifier names the same first link and rule as an
// independent model of docs/design.md §5. The model decides containment by enumerating a small universe of
// objects, not by the URN pattern code the verifier uses. Cached and uncached verification always agree.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChainCache,
  CredentialDeniedError,
  CredentialInvalidError,
  NO_REVOCATIONS,
  PRIVILEGES,
  TrustStore,
  verifyChain,
  type Grant,
} from '../../services/core/credentials/index.js';
import { NOW, T0, fakeBundle, forgeLink, principal, type Principal } from '../unit/credentials-fixtures.js';

const LIMITS = ['slivers', 'cpu_millis', 'mem_mb', 'disk_mb', 'ttl_s'] as const;
const TARGETS = [
  'urn:fedlab:a.test:node:n1',
  'urn:fedlab:a.test:node:n2',
  'urn:fedlab:a.test:slice:n1',
  'urn:fedlab:b.test:node:n1',
  'urn:fedlab:a.test:node:*',
  'urn:fedlab:a.test:slice:*',
  'urn:fedlab:b.test:node:*',
  'urn:fedlab:a.test:*',
  'urn:fedlab:b.test:*',
];
// Every object the targets can name, plus a name no exact target uses ("zz"), so a wildcard is never
// contained in an exact target.
const OBJECTS = ['a.test', 'b.test'].flatMap((d) =>
  ['node', 'slice'].flatMap((k) => ['n1', 'n2', 'zz'].map((n) => `urn:fedlab:${d}:${k}:${n}`)),
);

/** The objects a target names, decided by splitting strings (independent of the URN module). */
function cover(target: string): Set<string> {
  const [, , d, k, n] = target.split(':');
  return new Set(
    OBJECTS.filter((o) => {
      const [, , od, ok, on] = o.split(':');
      if (od !== d) return false;
      if (k === '*') return true;
      return ok === k && (n === '*' || on === n);
    }),
  );
}
const subset = (a: Set<string>, b: Set<string>) => [...a].every((x) => b.has(x));

interface Claims {
  priv: string[];
  tgt: string[];
  dlg: number;
  lim: Partial<Record<(typeof LIMITS)[number], number>>;
  nbf: number;
  exp: number;
}

const claimsArb: fc.Arbitrary<Claims> = fc.record({
  priv: fc.uniqueArray(fc.constantFrom(...PRIVILEGES), { minLength: 1, maxLength: 5 }),
  tgt: fc.uniqueArray(fc.constantFrom(...TARGETS), { minLength: 1, maxLength: 3 }),
  dlg: fc.integer({ min: 0, max: 4 }),
  lim: fc.dictionary(fc.constantFrom(...LIMITS), fc.integer({ min: 0, max: 100 }), { maxKeys: 3 }) as fc.Arbitrary<Claims['lim']>,
  nbf: fc.integer({ min: T0 - 1100, max: T0 - 900 }),
  exp: fc.integer({ min: T0 + 900, max: T0 + 1100 }),
});

/** Projects random claims onto a true attenuation of `p` (when p allows delegation at all). */
function attenuate(p: Claims, pLim: Claims['lim'], c: Claims): Claims {
  const priv = c.priv.filter((x) => p.priv.includes(x));
  const tgt = c.tgt.filter((t) => p.tgt.some((pt) => subset(cover(t), cover(pt))));
  const lim: Claims['lim'] = {};
  for (const k of LIMITS) {
    const v = c.lim[k];
    if (v !== undefined) lim[k] = pLim[k] === undefined ? v : Math.min(v, pLim[k] as number);
  }
  return {
    priv: priv.length > 0 ? priv : [p.priv[0] as string],
    tgt: tgt.length > 0 ? tgt : [p.tgt[0] as string],
    dlg: Math.max(0, Math.min(c.dlg, p.dlg - 1)),
    lim,
    nbf: Math.max(c.nbf, p.nbf),
    exp: Math.min(c.exp, p.exp),
  };
}

/** The first (link, rule) the model says a chain breaks, or null. */
function model(chain: Claims[]): { link: number; rule: string } | null {
  if (chain.length > 8) return { link: 8, rule: 'size' };
  if (!(chain[0] as Claims).tgt.every((t) => t.split(':')[2] === 'a.test')) return { link: 0, rule: 'trust-anchor' };
  let eff: Claims['lim'] = { ...(chain[0] as Claims).lim };
  for (let k = 1; k < chain.length; k++) {
    const p = chain[k - 1] as Claims;
    const c = chain[k] as Claims;
    if (p.dlg < 1 || c.dlg > p.dlg - 1) return { link: k, rule: 'dlg' };
    if (!c.priv.every((x) => p.priv.includes(x))) return { link: k, rule: 'priv' };
    if (!c.tgt.every((t) => p.tgt.some((pt) => subset(cover(t), cover(pt))))) return { link: k, rule: 'tgt' };
    if (LIMITS.some((l) => eff[l] !== undefined && c.lim[l] !== undefined && (c.lim[l] as number) > (eff[l] as number)))
      return { link: k, rule: 'lim' };
    if (c.exp > p.exp) return { link: k, rule: 'exp' };
    if (c.nbf < p.nbf) return { link: k, rule: 'nbf' };
    const next: Claims['lim'] = {};
    for (const l of LIMITS) if ((c.lim[l] ?? eff[l]) !== undefined) next[l] = (c.lim[l] ?? eff[l]) as number;
    eff = next;
  }
  return null;
}

/** How a child is made: a true attenuation, one possible widening of one, or anything at all. */
const MODES = [
  'attenuate',
  'attenuate',
  'attenuate',
  'attenuate',
  'attenuate',
  'attenuate',
  'priv',
  'tgt',
  'lim',
  'dlg',
  'exp',
  'nbf',
  'random',
] as const;
type Mode = (typeof MODES)[number];

/** Applies the widening attempt `mode` (which may or may not actually widen) to an attenuation `a`. */
function mutate(mode: Mode, a: Claims, p: Claims, pLim: Claims['lim'], c: Claims): Claims {
  switch (mode) {
    case 'attenuate':
      return a;
    case 'priv':
      return { ...a, priv: [...new Set([...a.priv, ...c.priv])] };
    case 'tgt':
      return { ...a, tgt: [...new Set([...a.tgt, c.tgt[0] as string])] };
    case 'lim': {
      const lim = { ...a.lim };
      for (const [k, v] of Object.entries(c.lim)) lim[k as keyof Claims['lim']] = (pLim[k as keyof Claims['lim']] ?? 0) + v - 50;
      for (const k of LIMITS) if ((lim[k] as number) < 0) delete lim[k];
      return { ...a, lim };
    }
    case 'dlg':
      return { ...a, dlg: p.dlg };
    case 'exp':
      return { ...a, exp: c.exp };
    case 'nbf':
      return { ...a, nbf: c.nbf };
    case 'random':
      return c;
  }
}

const rootArb: fc.Arbitrary<Claims> = fc
  .record({
    claims: claimsArb,
    // Most roots stay inside the anchor's domain; some reach into another.
    tgt: fc.oneof(
      {
        weight: 9,
        arbitrary: fc.uniqueArray(fc.constantFrom(...TARGETS.filter((t) => t.includes(':a.test:'))), { minLength: 1, maxLength: 3 }),
      },
      { weight: 1, arbitrary: fc.uniqueArray(fc.constantFrom(...TARGETS), { minLength: 1, maxLength: 3 }) },
    ),
    dlg: fc.integer({ min: 1, max: 7 }),
    priv: fc.uniqueArray(fc.constantFrom(...PRIVILEGES), { minLength: 3, maxLength: 11 }),
  })
  .map(({ claims, tgt, dlg, priv }) => ({ ...claims, tgt, dlg, priv }));

const nodeArb = fc.record({ parent: fc.nat(), holder: fc.nat({ max: 3 }), mode: fc.constantFrom(...MODES), claims: claimsArb });
const treeArb = fc.record({ root: rootArb, nodes: fc.array(nodeArb, { minLength: 1, maxLength: 12 }) });

const ma = principal('urn:fedlab:a.test:authority:ma');
const people: Principal[] = [0, 1, 2, 3].map((i) => principal(`urn:fedlab:a.test:user:u${i}`, i % 2 === 0 ? 'p256' : 'ed25519'));
const trust = new TrustStore();
trust.addBundle(fakeBundle('a.test', [ma]));

interface Built {
  claims: Claims[];
  tokens: string[];
  holder: Principal;
}

/** Builds every root-to-node chain of a tree, signed link by link by the parent's holder. */
function build(tree: { root: Claims; nodes: { parent: number; holder: number; mode: Mode; claims: Claims }[] }): Built[] {
  const rootHolder = people[0] as Principal;
  const out: Built[] = [
    { claims: [tree.root], tokens: [forgeLink({ iss: ma, sub: rootHolder, claims: { ...tree.root } }, 0)], holder: rootHolder },
  ];
  const lims: Claims['lim'][] = [{ ...tree.root.lim }];
  tree.nodes.forEach((n, i) => {
    // Parents are mostly the latest nodes, so trees grow deep as well as wide.
    const pi = n.parent % 3 === 0 ? n.parent % (i + 1) : Math.max(0, i - (n.parent % 2));
    const parent = out[pi] as Built;
    const pc = parent.claims[parent.claims.length - 1] as Claims;
    const c = mutate(n.mode, attenuate(pc, lims[pi] as Claims['lim'], n.claims), pc, lims[pi] as Claims['lim'], n.claims);
    const holder = people[n.holder] as Principal;
    const token = forgeLink(
      { iss: parent.holder, sub: holder, claims: { ...c } },
      parent.tokens.length,
      parent.tokens[parent.tokens.length - 1],
    );
    const eff: Claims['lim'] = {};
    for (const l of LIMITS)
      if ((c.lim[l] ?? (lims[pi] as Claims['lim'])[l]) !== undefined) eff[l] = (c.lim[l] ?? (lims[pi] as Claims['lim'])[l]) as number;
    lims.push(eff);
    out.push({ claims: [...parent.claims, c], tokens: [...parent.tokens, token], holder });
  });
  return out;
}

function run(
  b: Built,
  cache: ChainCache | null,
  privilege: (typeof PRIVILEGES)[number] | null = null,
  object: string | null = null,
): Grant | { link: number; rule: string; denied: boolean } {
  try {
    return verifyChain({
      chain: b.tokens,
      trust,
      holder: { urn: b.holder.urn, thumbprint: b.holder.kid },
      privilege,
      object,
      now: NOW,
      revocations: NO_REVOCATIONS,
      cache,
    });
  } catch (err) {
    if (err instanceof CredentialInvalidError || err instanceof CredentialDeniedError)
      return { link: err.link, rule: err.rule, denied: err instanceof CredentialDeniedError };
    throw err;
  }
}

describe('random delegation trees', () => {
  it('a chain verifies exactly when every link truly attenuates its parent; otherwise the first broken link and rule are named', () => {
    let valid = 0;
    let deep = 0;
    const rules = new Set<string>();
    fc.assert(
      fc.property(treeArb, (tree) => {
        for (const b of build(tree)) {
          const expected = model(b.claims);
          const got = run(b, null);
          if (expected === null) {
            valid++;
            if (b.claims.length > 2) deep++;
            expect('privileges' in got, JSON.stringify(got)).toBe(true);
          } else {
            rules.add(expected.rule);
            expect(got).toEqual({ ...expected, denied: false });
          }
        }
      }),
      { numRuns: 150 },
    );
    // The generator must exercise both outcomes, or the property says little.
    expect(valid).toBeGreaterThan(100);
    expect(deep).toBeGreaterThan(40);
    expect([...rules]).toEqual(expect.arrayContaining(['dlg', 'exp', 'lim', 'nbf', 'priv', 'tgt', 'trust-anchor']));
  });

  it('a valid chain grants exactly the leaf privileges on exactly the objects its targets cover', () => {
    fc.assert(
      fc.property(treeArb, fc.constantFrom(...PRIVILEGES), fc.constantFrom(...OBJECTS), (tree, privilege, object) => {
        for (const b of build(tree)) {
          if (model(b.claims) !== null) continue;
          const leaf = b.claims[b.claims.length - 1] as Claims;
          const got = run(b, null, privilege, object);
          const allowed = leaf.priv.includes(privilege) && leaf.tgt.some((t) => cover(t).has(object));
          if (allowed) expect('privileges' in got).toBe(true);
          else
            expect(got).toMatchObject({
              link: b.tokens.length - 1,
              denied: true,
              rule: leaf.priv.includes(privilege) ? 'grant-object' : 'grant-privilege',
            });
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the prefix cache never changes an answer', () => {
    const cache = new ChainCache({ maxEntries: 64 });
    fc.assert(
      fc.property(treeArb, fc.constantFrom(...PRIVILEGES, null), (tree, privilege) => {
        const chains = build(tree);
        // Verify in a shuffled order twice, so entries are inserted, hit, partially reused and evicted.
        for (const b of [...chains].reverse().concat(chains)) {
          const object = privilege ? 'urn:fedlab:a.test:node:n1' : null;
          expect(run(b, cache, privilege, object)).toEqual(run(b, null, privilege, object));
        }
      }),
      { numRuns: 100 },
    );
    expect(cache.stats.hits + cache.stats.partial).toBeGreaterThan(0);
  });
});
