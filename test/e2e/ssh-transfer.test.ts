// File copy and port forwarding into a container sliver with Debian's OpenSSH client (issue 14): scp of a
// 10 MB random file in and out (through the image's sftp-server run inside the sliver) with equal checksums,
// sftp in batch mode, and `ssh -L` to a server that listens on the sliver's own loopback (which the host's
// loopback does not reach); and sftp/scp refused with a clear message in a sliver whose image has no
// sftp-server (a busybox OCI image).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBusyboxImage,
  canContain,
  cannotContainReason,
  createSliver,
  startNodeManager,
  tempDir,
  type NmHarness,
  umociThere,
} from '../helpers/node-manager.js';
import { makeClientKey, opensshCheck, runTool, writeClientConfig } from '../helpers/openssh.js';

const skip = !canContain || !opensshCheck.ok || !umociThere;
if (skip)
  console.log(
    `skipping the OpenSSH transfer tests: ${!canContain ? cannotContainReason : !opensshCheck.ok ? opensshCheck.reason : 'umoci is missing'}`,
  );

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A free port on the host's loopback. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Sends one HTTP GET over a raw socket (no keep-alive) and returns the whole answer, or the error. */
function httpGet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let out = '';
    sock.on('connect', () => sock.write('GET / HTTP/1.0\r\nHost: x\r\n\r\n'));
    sock.on('data', (d) => (out += d.toString()));
    sock.on('error', (err) => resolve(`error: ${err.message}`));
    sock.on('close', () => resolve(out));
  });
}

describe.skipIf(skip)('scp, sftp and ssh -L with a container sliver', () => {
  let h: NmHarness;
  let dir: string;
  let cfg: string;
  const target = 'xfer@node';

  beforeAll(async () => {
    dir = tempDir('fedlab-ssh-');
    const key = makeClientKey(dir, 'carol');
    const imagesDir = join(dir, 'images');
    buildBusyboxImage(imagesDir, 'busy');
    h = await startNodeManager({
      driver: 'container',
      config: { ssh: { listen: '127.0.0.1:0' }, images_dir: imagesDir, policy: { images: ['host', 'oci:busy'] } },
    });
    await createSliver(h, 'xfer-1', {
      sliceUrn: 'urn:fedlab:plc.test:slice:xfer',
      users: [{ urn: 'urn:fedlab:plc.test:user:carol', sshKeys: [key.publicLine] }],
      resources: { cpuMillis: 500, memMb: 256, diskMb: 256, pids: 64, bandwidthKbps: 0 },
    });
    await createSliver(h, 'bare-1', {
      sliceUrn: 'urn:fedlab:plc.test:slice:bare',
      users: [{ urn: 'urn:fedlab:plc.test:user:carol', sshKeys: [key.publicLine] }],
      resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0, image: 'oci:busy' },
    });
    const node = (await h.client().getNodeInfo({}, { chain: h.parties.ownerChain })).node!;
    cfg = writeClientConfig(dir, { address: node.ssh!.address, hostKey: node.ssh!.hostKey, identity: key.file });
  }, 60_000);
  afterAll(async () => {
    await h?.destroy();
  });

  it('copies a 10 MB random file in and out with scp, checksums equal', async () => {
    const data = randomBytes(10 * 1024 * 1024);
    const src = join(dir, 'in.bin');
    writeFileSync(src, data);
    const up = await runTool('scp', ['-F', cfg, '-q', src, `${target}:/root/copied.bin`], { timeoutMs: 60_000 });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    const inside = await runTool('ssh', ['-F', cfg, target, 'sha256sum /root/copied.bin']);
    expect(inside.stdout.split(' ')[0]).toBe(sha(data));
    const back = join(dir, 'out.bin');
    const down = await runTool('scp', ['-F', cfg, '-q', `${target}:/root/copied.bin`, back], { timeoutMs: 60_000 });
    expect(down.code).toBe(0);
    expect(sha(readFileSync(back))).toBe(sha(data));
  }, 120_000);

  it('serves sftp in batch mode, in the sliver', async () => {
    writeFileSync(join(dir, 'note.txt'), 'a note\n');
    const batch = join(dir, 'batch');
    writeFileSync(batch, `put ${join(dir, 'note.txt')} /root/note.txt\nls /root\npwd\n`);
    const r = await runTool('sftp', ['-F', cfg, '-b', batch, target]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/note\.txt/);
    expect(r.stdout).toMatch(/Remote working directory: \/root/);
    expect((await runTool('ssh', ['-F', cfg, target, 'cat /root/note.txt'])).stdout).toBe('a note\n');
  });

  it('refuses sftp and scp with a message naming the missing sftp-server in a sliver whose image has none', async () => {
    // oci:busy is busybox alone: a shell, no sftp-server.
    const bare = 'bare@node';
    const batch = join(dir, 'batch-none');
    writeFileSync(batch, 'pwd\n');
    const r = await runTool('sftp', ['-F', cfg, '-b', batch, bare]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/this sliver's image has no \/usr\/lib\/openssh\/sftp-server: sftp and scp cannot work in it/);
    writeFileSync(join(dir, 'none.txt'), 'x\n');
    const cp = await runTool('scp', ['-F', cfg, '-q', join(dir, 'none.txt'), `${bare}:/root/none.txt`]);
    expect(cp.code).not.toBe(0);
    expect(cp.stderr).toMatch(/has no \/usr\/lib\/openssh\/sftp-server/);
    // Nothing was copied, and the sliver's shell still answers.
    expect((await runTool('ssh', ['-F', cfg, bare, 'test -e /root/none.txt; echo $?'])).stdout.trim()).toBe('1');
  });

  it('forwards a local port to a server on the sliver’s own loopback', async () => {
    const started = await runTool('ssh', [
      '-F',
      cfg,
      target,
      'mkdir -p /root/www && echo served-inside > /root/www/index.html && busybox httpd -p 127.0.0.1:8081 -h /root/www && echo up',
    ]);
    expect(started.stderr + started.stdout).toBe('up\n');
    // The host's own loopback has nothing there: the server is in the sliver's network namespace.
    expect(await httpGet(8081)).toMatch(/^error: .*ECONNREFUSED/);
    const local = await freePort();
    const { spawn } = await import('node:child_process');
    const tunnel = spawn('ssh', ['-F', cfg, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${local}:127.0.0.1:8081`, target], {
      stdio: 'ignore',
    });
    try {
      let answer = '';
      const end = Date.now() + 15_000;
      while (Date.now() < end) {
        answer = await httpGet(local);
        if (answer.includes('served-inside')) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(answer).toMatch(/^HTTP\/1\.[01] 200/);
      expect(answer).toMatch(/served-inside/);
    } finally {
      tunnel.kill('SIGKILL');
    }
  });
});
