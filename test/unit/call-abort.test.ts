// CallAbort: a served call's signal made only when read, and then in the state the call is in.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CallAbort, type CancellableCall } from '../../services/core/rpc/call-abort.js';

/** A stand-in for a grpc-js server call: a `cancelled` flag and the `cancelled` event. */
function fakeCall(): EventEmitter & { cancelled: boolean; cancel(): void } {
  const call = Object.assign(new EventEmitter(), {
    cancelled: false,
    cancel(): void {
      call.cancelled = true;
      call.emit('cancelled', 'cancelled');
    },
  });
  return call;
}
const asCall = (c: ReturnType<typeof fakeCall>): CancellableCall => c as unknown as CancellableCall;

describe('CallAbort', () => {
  it('makes no signal, timer or listener until the signal is read', () => {
    const call = fakeCall();
    const a = new CallAbort(asCall(call), Date.now() + 60_000);
    expect(a.aborted).toBe(false);
    expect(call.listenerCount('cancelled')).toBe(0);
    const signal = a.signal;
    expect(signal.aborted).toBe(false);
    expect(call.listenerCount('cancelled')).toBe(1);
    expect(a.signal).toBe(signal);
    a.done();
    expect(call.listenerCount('cancelled')).toBe(0);
  });

  it('starts aborted when the client cancelled before the signal was read, and says so without making it', () => {
    const call = fakeCall();
    const a = new CallAbort(asCall(call), Infinity);
    call.cancel();
    expect(a.aborted).toBe(true);
    expect(a.signal.aborted).toBe(true);
    expect(String(a.signal.reason)).toMatch(/cancelled by the client/);
  });

  it('starts aborted when the deadline passed before the signal was read', async () => {
    const a = new CallAbort(asCall(fakeCall()), Date.now() + 20);
    expect(a.aborted).toBe(false);
    await new Promise((r) => setTimeout(r, 40));
    expect(a.aborted).toBe(true);
    expect(String(a.signal.reason)).toMatch(/deadline exceeded/);
  });

  it('starts aborted with a forced stop that came before the signal was read', () => {
    const a = new CallAbort(asCall(fakeCall()), Infinity);
    a.abort(new Error('server stopping'));
    a.abort(new Error('a second reason is not the one kept'));
    expect(a.aborted).toBe(true);
    expect(String(a.signal.reason)).toMatch(/server stopping/);
  });

  it('once read, aborts on cancellation, on the deadline and on a forced stop', async () => {
    const c1 = fakeCall();
    const cancelled = new CallAbort(asCall(c1), Infinity);
    const s1 = cancelled.signal;
    c1.cancel();
    expect(s1.aborted).toBe(true);

    const timed = new CallAbort(asCall(fakeCall()), Date.now() + 20);
    const s2 = timed.signal;
    expect(s2.aborted).toBe(false);
    await new Promise<void>((r) => s2.addEventListener('abort', () => r(), { once: true }));
    expect(String(s2.reason)).toMatch(/deadline exceeded/);

    const stopped = new CallAbort(asCall(fakeCall()), Infinity);
    const s3 = stopped.signal;
    stopped.abort(new Error('forced stop'));
    expect(String(s3.reason)).toMatch(/forced stop/);
  });

  it('after done, a cancellation or the deadline no longer aborts, and a late read arms nothing', async () => {
    const call = fakeCall();
    const a = new CallAbort(asCall(call), Date.now() + 20);
    const s = a.signal;
    a.done();
    call.cancel();
    await new Promise((r) => setTimeout(r, 40));
    expect(s.aborted).toBe(false);

    const late = fakeCall();
    const b = new CallAbort(asCall(late), Date.now() + 60_000);
    b.done();
    expect(b.signal.aborted).toBe(false);
    expect(late.listenerCount('cancelled')).toBe(0);
  });
});
