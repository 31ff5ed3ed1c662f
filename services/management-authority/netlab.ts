/**
 * No longer used by the management authority: emulab links are made by the node
 * managers from the MA's link plan (aggregate/links.ts, docs/management-authority.md).
 * Kept only while test/unit/ma-requests.test.ts tests it and test/helpers/ma-harness.ts
 * names its CommandRunner type; remove the three together.
 *
 * Emulab-style links on the site host (docs/design.md §3): every node of an emulab
 * slice is a network namespace on the site host, named with this MA's prefix
 * (`fedlab-<instance>-<id>`), and every link between the slice's nodes is real:
 * a veth pair created directly inside the two namespaces (nothing is ever left
 * in the host's own namespace), addresses from the link's /24, and egress
 * shaped with tc — tbf for bandwidth alone, htb + netem when a link asks for
 * delay or loss and the kernel has netem. A LAN (more than two endpoints) is a
 * bridge in the first endpoint's namespace with a veth to each other one.
 * Deleting a namespace deletes its veths; every failure deletes what was made.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailedPreconditionError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

/** How many `ip -batch` processes make namespaces at once, and how many namespaces each makes. */
const BATCH_PROCESSES = 4;
const BATCH_SIZE = 25;

/** Runs a command (no shell) and reports how it ended. */
export interface CommandRunner {
  run(argv: readonly string[]): Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>;
}

/** Runs commands with execFile, each bounded by a timeout. */
export const systemRunner: CommandRunner = {
  run: (argv) =>
    new Promise((resolve) => {
      execFile(argv[0] as string, argv.slice(1), { timeout: 15_000, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    }),
};

/** One endpoint of a link: a namespace, the interface name inside it, and its address (CIDR). */
export interface LinkEndpoint {
  readonly netns: string;
  readonly ifname: string;
  readonly address: string;
}

/** A link to wire. */
export interface LinkWiring {
  readonly name: string;
  /** Index of the link in its slice (names the LAN bridge). */
  readonly index: number;
  readonly endpoints: readonly LinkEndpoint[];
  readonly bandwidthKbps: number;
  readonly delayMs: number;
  readonly lossPercent: number;
}

/** The address of endpoint `j` of a link using subnet `subnet` (10.200.<subnet>.<j+1>/24). */
export function linkAddress(subnet: number, j: number): string {
  return `10.200.${subnet}.${j + 1}/24`;
}

/** Options of {@link NetLab}. */
export interface NetLabOptions {
  /** Short id of this MA instance (hex), part of every namespace name it makes. */
  readonly instance: string;
  readonly log: Logger;
  readonly runner?: CommandRunner;
}

/** Namespaces and links of the site host. */
export class NetLab {
  readonly prefix: string;
  private readonly runner: CommandRunner;
  private netem: Promise<boolean> | undefined;
  private support: Promise<{ ok: true } | { ok: false; reason: string }> | undefined;

  constructor(private readonly deps: NetLabOptions) {
    this.prefix = `fedlab-${deps.instance}-`;
    this.runner = deps.runner ?? systemRunner;
  }

  /** A new namespace name: the prefix and a short random id. */
  newName(): string {
    return `${this.prefix}${randomBytes(4).toString('hex')}`;
  }

  /** Whether this host can make namespaces and links (root, `ip` and `tc`), and if not why. */
  supported(): Promise<{ ok: true } | { ok: false; reason: string }> {
    this.support ??= (async () => {
      if (typeof process.getuid === 'function' && process.getuid() !== 0) {
        return {
          ok: false as const,
          reason: 'the management authority does not run as root, so it cannot make network namespaces for emulab nodes',
        };
      }
      const ip = await this.runner.run(['ip', '-V']);
      if (ip.code !== 0) return { ok: false as const, reason: 'the `ip` command (iproute2) is missing on the site host' };
      const tc = await this.runner.run(['tc', '-V']);
      if (tc.code !== 0) return { ok: false as const, reason: 'the `tc` command (iproute2) is missing on the site host' };
      return { ok: true as const };
    })();
    return this.support;
  }

  /** Throws FAILED_PRECONDITION when namespaces cannot be made here. */
  async requireSupport(): Promise<void> {
    const s = await this.supported();
    if (!s.ok) throw new FailedPreconditionError(`${s.reason}; links cannot be wired at this site`, { rule: 'netlab' });
  }

  /**
   * Whether the kernel has netem (delay and loss): tried, not assumed, on the
   * loopback of a scratch namespace that is removed right after.
   */
  netemAvailable(): Promise<boolean> {
    this.netem ??= (async () => {
      if (!(await this.supported()).ok) return false;
      const ns = `${this.prefix}probe${randomBytes(2).toString('hex')}`;
      try {
        if ((await this.runner.run(['ip', 'netns', 'add', ns])).code !== 0) return false;
        const r = await this.runner.run(['tc', '-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
        return r.code === 0;
      } finally {
        await this.runner.run(['ip', 'netns', 'del', ns]);
      }
    })();
    return this.netem;
  }

  private async must(argv: readonly string[]): Promise<string> {
    const r = await this.runner.run(argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    return r.stdout;
  }

  /** Makes a namespace with its loopback up. */
  async createNamespace(ns: string): Promise<void> {
    this.checkName(ns);
    await this.must(['ip', 'netns', 'add', ns]);
    try {
      await this.must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    } catch (err) {
      await this.deleteNamespace(ns);
      throw err;
    }
  }

  /**
   * Makes many namespaces, each with its loopback up, with one `ip -batch` process instead of two
   * processes per namespace (forking the MA costs milliseconds each). On failure every one of them
   * is deleted again and the error says which command failed.
   */
  async createNamespaces(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    if (names.length === 1) return this.createNamespace(names[0] as string);
    for (const ns of names) this.checkName(ns);
    const dir = await mkdtemp(join(tmpdir(), 'fedlab-netlab-'));
    try {
      // In small chunks, so that each command stays well within the runner's timeout even on a busy
      // host, a few at once (the kernel work of one namespace does not wait for another's).
      const size = BATCH_SIZE;
      const chunks: string[][] = [];
      for (let i = 0; i < names.length; i += size) chunks.push(names.slice(i, i + size));
      let next = 0;
      const work = async (): Promise<void> => {
        while (next < chunks.length) {
          const k = next++;
          const file = join(dir, `namespaces-${k}.batch`);
          await writeFile(file, (chunks[k] as string[]).map((ns) => `netns add ${ns}\nnetns exec ${ns} ip link set lo up\n`).join(''), {
            mode: 0o600,
          });
          await this.must(['ip', '-batch', file]);
        }
      };
      const results = await Promise.allSettled(Array.from({ length: Math.min(BATCH_PROCESSES, chunks.length) }, work));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      for (const ns of names) await this.deleteNamespace(ns).catch(() => undefined);
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Deletes many namespaces with one `ip -batch` process (missing ones are fine); returns those that
   * are still there afterwards, each with why.
   */
  async deleteNamespaces(names: readonly string[]): Promise<Map<string, string>> {
    const failed = new Map<string, string>();
    if (names.length <= 1) {
      for (const ns of names) await this.deleteNamespace(ns).catch((err: unknown) => failed.set(ns, (err as Error).message));
      return failed;
    }
    for (const ns of names) this.checkName(ns);
    const dir = await mkdtemp(join(tmpdir(), 'fedlab-netlab-'));
    try {
      let stderr = '';
      for (let i = 0; i < names.length; i += BATCH_SIZE * 4) {
        const file = join(dir, `delete-${i}.batch`);
        await writeFile(
          file,
          names
            .slice(i, i + BATCH_SIZE * 4)
            .map((ns) => `netns del ${ns}\n`)
            .join(''),
          { mode: 0o600 },
        );
        // -force: go on past a namespace that is already gone; what is left is checked below.
        const r = await this.runner.run(['ip', '-force', '-batch', file]);
        if (r.code !== 0) stderr ||= r.stderr.trim().slice(0, 200);
      }
      const left = new Set(await this.list());
      for (const ns of names) if (left.has(ns)) failed.set(ns, `ip netns del ${ns} failed: ${stderr || 'the namespace is still there'}`);
      return failed;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Deletes a namespace (and with it its veths); a missing one is fine. */
  async deleteNamespace(ns: string): Promise<void> {
    this.checkName(ns);
    const r = await this.runner.run(['ip', 'netns', 'del', ns]);
    if (r.code !== 0 && !/No such file|Invalid argument|does not exist/i.test(r.stderr)) {
      throw new Error(`ip netns del ${ns} failed: ${r.stderr.trim().slice(0, 200)}`);
    }
  }

  /** This instance's namespaces that exist now. */
  async list(): Promise<string[]> {
    const out = await this.must(['ip', 'netns', 'list']);
    return out
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter((n) => n.startsWith(this.prefix));
  }

  /** Deletes this instance's namespaces that `keep` does not name; returns them. */
  async removeOrphans(keep: ReadonlySet<string>): Promise<string[]> {
    if (!(await this.supported()).ok) return [];
    const gone: string[] = [];
    for (const ns of await this.list()) {
      if (keep.has(ns)) continue;
      await this.deleteNamespace(ns);
      gone.push(ns);
    }
    if (gone.length) this.deps.log.warn({ namespaces: gone }, 'removed namespaces no sliver owns');
    return gone;
  }

  /** Wires one link; on failure removes the interfaces it made (the namespaces stay, their owners delete them). */
  async createLink(link: LinkWiring): Promise<void> {
    if ((link.delayMs > 0 || link.lossPercent > 0) && !(await this.netemAvailable())) {
      throw new FailedPreconditionError(
        `link ${link.name} asks for delay or loss, but this site's kernel has no netem; ask for bandwidth only or use another site`,
        { rule: 'netem' },
      );
    }
    const made: { ns: string; dev: string }[] = [];
    try {
      if (link.endpoints.length === 2) {
        const [a, b] = link.endpoints as [LinkEndpoint, LinkEndpoint];
        await this.must(['ip', 'link', 'add', a.ifname, 'netns', a.netns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.netns]);
        made.push({ ns: a.netns, dev: a.ifname });
        for (const e of [a, b]) await this.configure(e, e.ifname, link);
      } else {
        // A LAN: a bridge in the first endpoint's namespace, a veth from it to each other endpoint.
        const hub = link.endpoints[0] as LinkEndpoint;
        const bridge = hub.ifname;
        await this.must(['ip', '-n', hub.netns, 'link', 'add', bridge, 'type', 'bridge']);
        made.push({ ns: hub.netns, dev: bridge });
        for (const [j, e] of link.endpoints.slice(1).entries()) {
          const port = `lan${link.index}p${j + 1}`;
          await this.must(['ip', 'link', 'add', port, 'netns', hub.netns, 'type', 'veth', 'peer', 'name', e.ifname, 'netns', e.netns]);
          made.push({ ns: hub.netns, dev: port });
          await this.must(['ip', '-n', hub.netns, 'link', 'set', port, 'master', bridge, 'up']);
          // Traffic into this endpoint is capped too (the port's egress).
          await this.shape(hub.netns, port, link);
          await this.configure(e, e.ifname, link);
        }
        await this.configure(hub, bridge, link);
      }
    } catch (err) {
      for (const m of made.reverse()) await this.runner.run(['ip', '-n', m.ns, 'link', 'del', m.dev]);
      throw err;
    }
  }

  private async configure(e: LinkEndpoint, dev: string, link: LinkWiring): Promise<void> {
    await this.must(['ip', '-n', e.netns, 'addr', 'add', e.address, 'dev', dev]);
    await this.must(['ip', '-n', e.netns, 'link', 'set', dev, 'up']);
    await this.shape(e.netns, dev, link);
  }

  /** Egress shaping of one device: tbf for bandwidth; htb + netem, or netem alone, for delay and loss. */
  private async shape(ns: string, dev: string, link: LinkWiring): Promise<void> {
    const rate = link.bandwidthKbps;
    const netem = link.delayMs > 0 || link.lossPercent > 0;
    const netemArgs = [
      ...(link.delayMs > 0 ? ['delay', `${link.delayMs}ms`] : []),
      ...(link.lossPercent > 0 ? ['loss', `${link.lossPercent}%`] : []),
    ];
    if (rate > 0 && !netem) {
      // Burst of at least 10 ms of traffic (and a few full frames), so the rate holds with coarse timers.
      const burst = Math.max(16_000, Math.ceil((rate * 1000) / 8 / 100));
      await this.must([
        'tc',
        '-n',
        ns,
        'qdisc',
        'replace',
        'dev',
        dev,
        'root',
        'tbf',
        'rate',
        `${rate}kbit`,
        'burst',
        String(burst),
        'latency',
        '50ms',
      ]);
    } else if (rate > 0) {
      await this.must(['tc', '-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1']);
      await this.must([
        'tc',
        '-n',
        ns,
        'class',
        'add',
        'dev',
        dev,
        'parent',
        '1:',
        'classid',
        '1:1',
        'htb',
        'rate',
        `${rate}kbit`,
        'ceil',
        `${rate}kbit`,
      ]);
      await this.must(['tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:', 'netem', ...netemArgs]);
    } else if (netem) {
      await this.must(['tc', '-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'netem', ...netemArgs]);
    }
  }

  private checkName(ns: string): void {
    // Only ever touch this instance's own namespaces.
    if (!ns.startsWith(this.prefix) || !/^[a-z0-9-]{1,60}$/.test(ns))
      throw new Error(`refusing to touch namespace ${JSON.stringify(ns)}: it is not this MA's`);
  }
}
