/**
 * One `direct-tcpip` channel (`ssh -L`): to an IP literal and port only
 * (forward-target.ts), counted against the slice's forward bound and the
 * connection's channel bound, through the driver's relay from inside the
 * sliver's network namespace. The relay is killed when the channel or the
 * connection ends, also when that happened while it was being started.
 */
import type { Writable } from 'node:stream';
import type { ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { Logger } from '../../core/log.js';
import type { SliverManager } from '../sliver-manager.js';
import { guardChannel } from './channel-guard.js';
import { pipeCommand, type Traffic } from './channel-pipe.js';
import { forwardTarget } from './forward-target.js';
import type { SshLimits } from './limits.js';

/** What a forward needs from its connection. */
export interface ForwardContext {
  readonly sliverUrn: string;
  readonly sliceUrn: string;
  readonly slivers: SliverManager;
  readonly limits: SshLimits;
  readonly log: Logger;
  readonly traffic: Traffic;
  readonly now: () => number;
  /** The connection's socket (its buffer bounds what is written). */
  readonly wire: Writable;
  /** Aborted when the connection ends. */
  readonly signal: AbortSignal;
  /** Takes a channel slot of the connection (false: refuse; the connection may have been ended). */
  readonly admit: () => boolean;
  /** Whether the connection may still go on (checked again once the relay runs). */
  readonly mayStart: () => boolean;
  /** The peer sent past its window. */
  readonly onOverrun: () => void;
  /** Gives the channel slot back (called once, for an admitted channel). */
  readonly onEnd: () => void;
}

/** Serves (or refuses) one direct-tcpip channel open. */
export function forwardChannel(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo, c: ForwardContext): void {
  const target = forwardTarget(info.destIP, info.destPort);
  if (!target) {
    c.log.info(
      { sliver: c.sliverUrn, host: String(info.destIP).slice(0, 64), port: info.destPort },
      'ssh forwarding refused: not an IP address and port',
    );
    return reject();
  }
  if (!c.admit()) return reject();
  if (!c.limits.take('forwards', c.sliceUrn)) {
    c.onEnd();
    c.log.info({ slice: c.sliceUrn }, 'ssh forwarding refused: the slice has the most forwards allowed on this node');
    return reject();
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    c.limits.release('forwards', c.sliceUrn);
    c.onEnd();
  };
  const refuse = (): void => {
    try {
      reject();
    } catch {
      // Closed already.
    }
    release();
  };
  c.slivers
    .connect(c.sliverUrn, target.host, target.port)
    .then(async (relay) => {
      // The connection may have ended, or the sliver gone, while the relay started.
      if (!c.mayStart()) {
        await relay.kill();
        return refuse();
      }
      const channel = accept();
      const gone = new AbortController();
      guardChannel(channel, { onOverrun: c.onOverrun, onRemoteClose: () => gone.abort() });
      channel.once('close', () => gone.abort());
      try {
        await pipeCommand(channel, relay, c.traffic, c.now, c.wire, AbortSignal.any([c.signal, gone.signal]));
      } finally {
        try {
          channel.end();
        } catch {
          // Closed already.
        }
        release();
      }
    })
    .catch((err: unknown) => {
      c.log.info({ sliver: c.sliverUrn, err: (err as Error).message }, 'ssh forwarding refused');
      refuse();
    });
}
