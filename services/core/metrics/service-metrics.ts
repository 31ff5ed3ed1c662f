/**
 * One service's Prometheus metrics (prom-client, the ecosystem's client):
 * per-RPC call counts and latency, refusals by rule, the process defaults, and
 * whatever gauges the role registers. Label sets stay bounded: methods, codes
 * and rules are closed sets; no URN of an unbounded set becomes a label.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CallStats } from './call-stats.js';

/** Reads a gauge's current values when scraped: one value per label set. */
export type GaugeCollector<L extends string> = () =>
  Iterable<readonly [Partial<Record<L, string>>, number]> | Promise<Iterable<readonly [Partial<Record<L, string>>, number]>>;

/** The metrics of one running service. */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly calls: CallStats;
  private readonly refusals: Counter<'code' | 'rule'>;

  /** `processDefaults: false` leaves out prom-client's process metrics (for measuring their cost). */
  constructor(role: string, options: { readonly processDefaults?: boolean } = {}) {
    this.registry.setDefaultLabels({ role });
    if (options.processDefaults !== false) collectDefaultMetrics({ register: this.registry, prefix: 'fedlab_' });
    this.calls = new CallStats(
      this.registry,
      { calls: 'fedlab_rpc_calls_total', seconds: 'fedlab_rpc_duration_seconds' },
      {
        calls: 'RPC calls served, by method and status code',
        seconds: 'Time to serve an RPC (unary: to the answer; streaming: to the end of the stream), by method',
      },
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.refusals = new Counter({
      name: 'fedlab_credential_refusals_total',
      help: 'Calls refused for their identity or credential chain, by status code and the rule that failed',
      labelNames: ['code', 'rule'],
      registers: [this.registry],
    });
  }

  /** Records one finished call: plain counts on the call path, read into prom-client when scraped (call-stats.ts). */
  observeCall(method: string, code: string, seconds: number, rule?: string): void {
    this.calls.observe(method, code, seconds);
    if (code === 'UNAUTHENTICATED' || code === 'PERMISSION_DENIED') this.refusals.inc({ code, rule: rule ?? 'none' });
  }

  /** Registers a gauge whose values are read from the role's state at each scrape. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[], collect: GaugeCollector<L>): void {
    new Gauge<L>(this.readAtScrape(name, help, labelNames, collect, (g: Gauge<L>, labels, value) => g.set(labels, value)));
  }

  /** Registers a counter whose values the role keeps itself (plain numbers) and are read at each scrape. */
  counterFrom<L extends string>(name: string, help: string, labelNames: readonly L[], collect: GaugeCollector<L>): void {
    new Counter<L>(this.readAtScrape(name, help, labelNames, collect, (c: Counter<L>, labels, value) => c.inc(labels, value)));
  }

  /** The options of a metric whose values are `collect`ed at each scrape and written into it with `write` (a gauge sets, a counter adds). */
  private readAtScrape<L extends string, M extends { reset(): void }>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: GaugeCollector<L>,
    write: (metric: M, labels: Partial<Record<L, string | number>>, value: number) => void,
  ) {
    return {
      name,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      async collect(this: M) {
        const values = await collect();
        this.reset();
        for (const [labels, value] of values) write(this, labels, value);
      },
    };
  }

  /** Registers a counter the role increments itself; returns it. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return new Counter<L>({ name, help, labelNames: [...labelNames], registers: [this.registry] });
  }

  /** Registers a latency histogram the role observes itself; returns it. */
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[]): Histogram<L> {
    return new Histogram<L>({
      name,
      help,
      labelNames: [...labelNames],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
  }

  /** The exposition text of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
