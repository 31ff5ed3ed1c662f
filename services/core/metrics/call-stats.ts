/**
 * Per-call RPC statistics kept as plain numbers on the call path and handed
 * to prom-client only when scraped. prom-client's `inc(labels)` and
 * `observe(labels, v)` validate and hash their label object on every call;
 * a server's methods and codes are a closed set, so each call here costs two
 * map lookups and a few additions, and the text a scrape serves is the same
 * series (`fedlab_rpc_calls_total{method,code}`, the
 * `fedlab_rpc_duration_seconds{method}` histogram) with the same values.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** One method's figures. */
interface MethodStats {
  /** Calls by code not yet added to the counter. */
  readonly pending: Map<string, number>;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** Calls and latencies per method, exported through a counter and a histogram on `registry`. */
export class CallStats {
  private readonly methods = new Map<string, MethodStats>();

  constructor(
    registry: Registry,
    names: { readonly calls: string; readonly seconds: string },
    helps: { readonly calls: string; readonly seconds: string },
    private readonly bounds: readonly number[],
  ) {
    const methods = this.methods;
    new Counter({
      name: names.calls,
      help: helps.calls,
      labelNames: ['method', 'code'],
      registers: [registry],
      collect() {
        for (const [method, m] of methods) {
          for (const [code, n] of m.pending) {
            if (n > 0) this.inc({ method, code }, n);
            m.pending.set(code, 0);
          }
        }
      },
    });
    registry.registerMetric(new CallHistogram(names.seconds, helps.seconds, bounds, methods));
  }

  /** Records one finished call. */
  observe(method: string, code: string, seconds: number): void {
    let m = this.methods.get(method);
    if (!m) {
      m = { pending: new Map(), buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.methods.set(method, m);
    }
    m.pending.set(code, (m.pending.get(code) ?? 0) + 1);
    let i = 0;
    while (i < this.bounds.length && seconds > (this.bounds[i] as number)) i++;
    (m.buckets[i] as number)++;
    m.sum += seconds;
    m.count++;
  }
}

/** One line of the histogram: prom-client's own shape (the method as a shared label, after `le`). */
type HistogramValue = {
  readonly labels: Record<string, string | number>;
  readonly sharedLabels: { readonly method: string };
  readonly value: number;
  readonly metricName: string;
};

/**
 * The latency histogram as prom-client serves it, read from {@link CallStats}: a prom-client
 * Histogram (so the registry treats it as one) whose values come from the plain counts, in the
 * shape and order prom-client's own gives them, so the text is the same line for line.
 */
class CallHistogram extends Histogram<'method'> {
  constructor(
    private readonly metricName: string,
    private readonly helpText: string,
    private readonly upper: readonly number[],
    private readonly methods: ReadonlyMap<string, MethodStats>,
  ) {
    // Not registered by the base class: the caller registers this object.
    super({ name: metricName, help: helpText, labelNames: ['method'], buckets: [...upper], registers: [] });
  }

  /** What the registry asks for when it writes the text format. */
  getForPromString(): Promise<never> {
    const values: HistogramValue[] = [];
    const bucket = `${this.metricName}_bucket`;
    for (const [method, m] of this.methods) {
      const sharedLabels = { method };
      let acc = 0;
      for (let i = 0; i < this.upper.length; i++) {
        acc += m.buckets[i] as number;
        values.push({ labels: { le: this.upper[i] as number }, sharedLabels, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels, value: m.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels, value: m.sum, metricName: `${this.metricName}_sum` });
      values.push({ labels: {}, sharedLabels, value: m.count, metricName: `${this.metricName}_count` });
    }
    return Promise.resolve({ name: this.metricName, help: this.helpText, type: 'histogram', values, aggregator: 'sum' } as never);
  }

  override async get(): Promise<never> {
    const data = (await this.getForPromString()) as { values: HistogramValue[] };
    // As prom-client's get(): the shared labels folded into each value's own.
    const values = data.values.map(({ labels, sharedLabels, value, metricName }) => ({
      labels: { ...labels, ...sharedLabels },
      value,
      metricName,
    }));
    return { ...data, values } as never;
  }

  override reset(): void {
    super.reset();
    // The base constructor resets too, before this class's fields are set.
    const methods = this.methods as ReadonlyMap<string, MethodStats> | undefined;
    for (const m of methods?.values() ?? []) {
      m.buckets.fill(0);
      m.sum = 0;
      m.count = 0;
    }
  }
}
