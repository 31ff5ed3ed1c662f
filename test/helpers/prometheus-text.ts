// A strict reader of the Prometheus text exposition format (0.0.4), for tests that scrape /metrics:
// every line is a HELP, a TYPE or a sample; names and labels are well formed; every sample belongs to a
// family with a TYPE; histogram buckets grow and end in +Inf equal to _count. Anything else throws.

/** One sample: its metric name, labels and value. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A parsed scrape: families by name (with their type) and every sample. */
export interface Scrape {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  /** The samples of `name` whose labels include `labels`. */
  find(name: string, labels?: Record<string, string>): Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without '='`);
    const key = text.slice(i, eq).trim();
    if (!LABEL.test(key)) throw new Error(`line ${line}: bad label name ${JSON.stringify(key)}`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value of ${key} is not quoted`);
    let j = eq + 2;
    let value = '';
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j];
        value += next === 'n' ? '\n' : (next ?? '');
      } else value += text[j];
    }
    if (text[j] !== '"') throw new Error(`line ${line}: unterminated label value of ${key}`);
    if (key in labels) throw new Error(`line ${line}: label ${key} twice`);
    labels[key] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (i < text.length) throw new Error(`line ${line}: expected ',' between labels`);
  }
  return labels;
}

function familyOf(name: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
    if (name.endsWith(suffix) && types.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return undefined;
}

/** Parses an exposition, throwing on the first line that does not conform. */
export function parsePrometheusText(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === '') return;
    if (raw.startsWith('# HELP ')) {
      const name = raw.slice(7).split(' ')[0] ?? '';
      if (!NAME.test(name)) throw new Error(`line ${line}: bad HELP name`);
      return;
    }
    if (raw.startsWith('# TYPE ')) {
      const [name = '', type = ''] = raw.slice(7).split(' ');
      if (!NAME.test(name) || !TYPES.has(type)) throw new Error(`line ${line}: bad TYPE line ${JSON.stringify(raw)}`);
      if (types.has(name)) throw new Error(`line ${line}: TYPE of ${name} twice`);
      types.set(name, type);
      return;
    }
    if (raw.startsWith('#')) return;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(raw);
    if (!m) throw new Error(`line ${line}: not a sample: ${JSON.stringify(raw)}`);
    const name = m[1] as string;
    // Values parse as Prometheus parses them (Go's ParseFloat: NaN and Inf in any case).
    const word = (m[3] as string).toLowerCase();
    const value = /^\+?inf$/.test(word) ? Infinity : word === '-inf' ? -Infinity : word === 'nan' ? NaN : Number(m[3]);
    if (Number.isNaN(value) && word !== 'nan') throw new Error(`line ${line}: bad value ${m[3]}`);
    if (!familyOf(name, types)) throw new Error(`line ${line}: sample ${name} has no TYPE`);
    samples.push({ name, labels: parseLabels(m[2] ?? '', line), value });
  });
  // Histograms: cumulative buckets ending in +Inf, which equals _count, per label set.
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      let last = -1;
      for (const b of buckets) {
        if (b.value < last) throw new Error(`${family}${key}: buckets do not grow`);
        last = b.value;
      }
      const inf = buckets.find((b) => b.labels.le === '+Inf');
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
      if (!inf || !count || inf.value !== count.value) throw new Error(`${family}${key}: +Inf bucket missing or not equal to _count`);
    }
  }
  return {
    types,
    samples,
    find: (name, labels = {}) => samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)),
  };
}
