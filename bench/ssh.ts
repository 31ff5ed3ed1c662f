// `npm run bench:ssh`: the node manager's SSH endpoint against Debian's OpenSSH server on this machine,
// with the same OpenSSH client: login-to-exit latency of `ssh … true` (median of 50) and scp throughput
// of a 100 MB file (best of 3 uploads), printed with the ratios (targets: latency ≤ 1.5× sshd,
// throughput ≥ 0.5× sshd). Ours runs the command in a container sliver (runc exec per session) when
// the container driver can run here, else with the process driver; sshd runs it on the host.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { quietIrrelevantWarnings } from '../cli/warnings.js';
import { canContain, createSliver, startNodeManager, tempDir } from '../test/helpers/node-manager.js';
import { makeClientKey, runTool, writeClientConfig } from '../test/helpers/openssh.js';
import { freePort, loadAverage, median } from './support.js';

quietIrrelevantWarnings();

const LOGINS = Number(process.env.BENCH_SSH_LOGINS ?? 50);
const MB = Number(process.env.BENCH_SSH_MB ?? 100);
const COPIES = 3;
const SSHD = '/usr/sbin/sshd';

/** Median login-to-exit of `ssh target true` (ms), after 3 warm-up logins. */
async function loginLatency(cfg: string, target: string): Promise<number> {
  const times: number[] = [];
  for (let i = -3; i < LOGINS; i++) {
    const r = await runTool('ssh', ['-F', cfg, target, 'true']);
    if (r.code !== 0) throw new Error(`ssh ${target} true failed (${r.code}): ${r.stderr.trim()}`);
    if (i >= 0) times.push(r.ms);
  }
  return median(times);
}

/** Best of {@link COPIES} scp uploads of `file` (MB/s). */
async function scpThroughput(cfg: string, file: string, dest: string): Promise<number> {
  let best = 0;
  for (let i = 0; i < COPIES; i++) {
    const t = performance.now();
    const r = await runTool('scp', ['-F', cfg, '-q', file, dest], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`scp to ${dest} failed (${r.code}): ${r.stderr.trim()}`);
    best = Math.max(best, MB / ((performance.now() - t) / 1000));
  }
  return best;
}

/** Debian's sshd on a free loopback port, its own host key, our client key; runs until killed. */
async function startSshd(dir: string, publicKey: string): Promise<{ address: string; hostKey: string; stop: () => void }> {
  const port = await freePort();
  const hostKey = makeClientKey(dir, 'ssh_host_ed25519_key');
  writeFileSync(join(dir, 'authorized_keys'), `${publicKey}\n`, { mode: 0o600 });
  // Privilege separation needs its directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const cfg = join(dir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey.file}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'UseDNS no',
      'PrintMotd no',
      `Subsystem sftp /usr/lib/openssh/sftp-server`,
      '',
    ].join('\n'),
  );
  const child = spawn(SSHD, ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const address = `127.0.0.1:${port}`;
  for (let i = 0; i < 100 && !err.includes('Server listening'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!err.includes('Server listening')) throw new Error(`sshd did not start: ${err.trim()}`);
  return { address, hostKey: hostKey.publicLine, stop: () => child.kill('SIGTERM') };
}

async function main(): Promise<void> {
  if (!existsSync(SSHD)) {
    console.log(`bench:ssh skipped: ${SSHD} is missing (apt-get install openssh-server)`);
    return;
  }
  const driver = canContain ? 'container' : 'process';
  console.log(
    `ssh benchmark — ${availableParallelism()} cores, Node ${process.version}, load ${loadAverage()}; ours with the ${driver} driver\n`,
  );
  const dir = tempDir('fedlab-bench-ssh-');
  const key = makeClientKey(dir, 'bench');
  const file = join(dir, 'payload.bin');
  writeFileSync(file, randomBytes(MB * 1024 * 1024));

  const h = await startNodeManager({ driver, config: { ssh: { listen: '127.0.0.1:0' }, capacity: { disk_mb: 8192 } } });
  const sshdDir = join(dir, 'sshd');
  mkdirSync(sshdDir);
  const sshd = await startSshd(sshdDir, key.publicLine);
  try {
    await createSliver(h, 'bench-1', {
      sliceUrn: 'urn:fedlab:plc.test:slice:bench',
      users: [{ urn: 'urn:fedlab:plc.test:user:bench', sshKeys: [key.publicLine] }],
      resources: { cpuMillis: 2000, memMb: 512, diskMb: 4 * MB, pids: 128, bandwidthKbps: 0 },
    });
    const ep = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!.ssh!;
    mkdirSync(join(dir, 'ours'));
    mkdirSync(join(dir, 'theirs'));
    const ours = writeClientConfig(join(dir, 'ours'), { address: ep.address, hostKey: ep.hostKey, identity: key.file });
    const theirs = writeClientConfig(join(dir, 'theirs'), { address: sshd.address, hostKey: sshd.hostKey, identity: key.file });

    const latOurs = await loginLatency(ours, 'bench@node');
    const latSshd = await loginLatency(theirs, 'root@node');
    console.log(`login → exit (ssh … true, median of ${LOGINS})`);
    console.log(`  fedlab  ${latOurs.toFixed(1)} ms`);
    console.log(`  sshd    ${latSshd.toFixed(1)} ms`);
    console.log(`  ratio   ${(latOurs / latSshd).toFixed(2)}× sshd (target ≤ 1.5×)\n`);

    const tpOurs = await scpThroughput(ours, file, 'bench@node:/root/payload.bin');
    const tpSshd = await scpThroughput(theirs, file, `root@node:${join(sshdDir, 'payload.bin')}`);
    console.log(`scp of ${MB} MB (best of ${COPIES})`);
    console.log(`  fedlab  ${tpOurs.toFixed(1)} MB/s`);
    console.log(`  sshd    ${tpSshd.toFixed(1)} MB/s`);
    console.log(`  ratio   ${(tpOurs / tpSshd).toFixed(2)}× sshd (target ≥ 0.5×)`);
  } finally {
    sshd.stop();
    await h.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
