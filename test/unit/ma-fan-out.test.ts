// The MA's fan-out to many nodes with the incoming call's AbortSignal: every call in flight listens on a signal of
// the fan-out's own, so more than ten of them raise no MaxListenersExceededWarning; an abort of the caller's signal
// still reaches every call, and the fan-out leaves no listener on the caller's signal.
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../services/core/log.js';
import type { CallOpts } from '../../services/core/rpc/client.js';
import { NodeClients, type FanOutOptions, type NmClient, type NodeResult } from '../../services/management-authority/node-clients.js';
import type { NodeRegistry } from '../../services/management-authority/node-registry.js';

/** Node clients whose calls are the given function itself, with the signal the fan-out hands each call. */
class SignalProbe extends NodeClients {
  override async call<T>(
    nodeUrn: string,
    fn: (client: NmClient, opts: CallOpts) => Promise<T>,
    options: FanOutOptions = {},
  ): Promise<NodeResult<T>> {
    const value = await fn(undefined as never, { chain: [], deadlineMs: 1000, ...(options.signal ? { signal: options.signal } : {}) });
    return { nodeUrn, ok: true, value };
  }
}

const probe = () =>
  new SignalProbe({
    tls: { caCerts: '', cert: '', key: '' } as never,
    registry: {} as NodeRegistry,
    log: silentLogger(),
    deadlineMs: 1000,
    concurrency: 64,
    maxChannels: 8,
  });

const warnings: Error[] = [];
const onWarning = (w: Error): void => void warnings.push(w);

afterEach(() => {
  process.off('warning', onWarning);
  warnings.length = 0;
});

describe('fan-out with a shared signal', () => {
  it('runs 40 calls at once on one caller signal without a MaxListeners warning, and removes its listener', async () => {
    process.on('warning', onWarning);
    const caller = new AbortController();
    const items = Array.from({ length: 40 }, (_, i) => `urn:fedlab:x.test:node:n${i}`);
    let most = 0;
    let inFlight = 0;
    const out = await probe().fanOut(
      items,
      (u) => u,
      async (_c, opts) => {
        const noop = (): void => undefined;
        opts.signal?.addEventListener('abort', noop, { once: true });
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        opts.signal?.removeEventListener('abort', noop);
        return opts.signal !== caller.signal;
      },
      { signal: caller.signal },
    );
    await new Promise((r) => setImmediate(r));
    expect(most).toBe(40);
    expect(out.every((r) => r.ok && r.value === true)).toBe(true);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('an abort of the caller reaches every call in flight', async () => {
    const caller = new AbortController();
    const items = Array.from({ length: 12 }, (_, i) => `n${i}`);
    const run = probe().fanOut(
      items,
      (u) => u,
      (_c, opts) =>
        new Promise<string>((resolve) => {
          if (opts.signal?.aborted) resolve('aborted');
          opts.signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
        }),
      { signal: caller.signal },
    );
    await new Promise((r) => setTimeout(r, 10));
    caller.abort(new Error('the call ended'));
    const out = await run;
    expect(out.map((r) => (r.ok ? r.value : r.reason))).toEqual(items.map(() => 'aborted'));
  });
});
