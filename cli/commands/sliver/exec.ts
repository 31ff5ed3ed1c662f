/** `fedlab sliver exec`: a command run in a sliver, its output streamed, its exit code ours. */
import { constants } from 'node:os';
import type { Command } from 'commander';
import { UnavailableError } from '../../../services/core/errors.js';
import { action } from '../../cli-support.js';
import { envFrom, repeatable } from '../../flag-values.js';
import { refused } from '../../remote.js';
import { nodeClient, withSliver, type SliverFlags } from './node-client.js';

/** Registers `fedlab sliver exec`. */
export function registerSliverExec(sliver: Command): void {
  withSliver(
    sliver
      .command('exec')
      .description('run a command in a sliver, stream its output, exit with its exit code')
      .argument('<command...>', 'the program and its arguments (after --)'),
  )
    .option('--env <name=value>', 'environment variable (repeatable)', repeatable, [])
    .option('--stdin', "send this process's standard input to the command")
    .action(
      action(async (argv: string[], flags: SliverFlags & { env: string[]; stdin?: boolean }) => {
        const env = envFrom(flags.env);
        let stdin: Buffer | undefined;
        if (flags.stdin) {
          const parts: Buffer[] = [];
          for await (const chunk of process.stdin) parts.push(chunk as Buffer);
          stdin = Buffer.concat(parts);
        }
        const { client, chain, timeoutS } = await nodeClient(flags, 60);
        let code: number | undefined;
        try {
          const stream = client.exec(
            { sliverUrn: flags.sliver, argv, env, ...(stdin ? { stdin } : {}), timeoutMs: Math.min(timeoutS * 1000, 86_400_000) },
            { chain, deadlineMs: timeoutS * 1000 + 5_000 },
          );
          for await (const msg of stream) {
            const chunk = msg.chunk;
            if (!chunk) continue;
            if (chunk.$case === 'stdout') process.stdout.write(chunk.stdout);
            else if (chunk.$case === 'stderr') process.stderr.write(chunk.stderr);
            else {
              const st = chunk.exit.status;
              if (st?.$case === 'signal') {
                const n = (constants.signals as Record<string, number>)[st.signal] ?? 0;
                process.stderr.write(`fedlab: the command was killed by ${st.signal}${chunk.exit.timedOut ? ' (timed out)' : ''}\n`);
                code = 128 + n;
              } else code = st?.$case === 'code' ? st.code : 0;
            }
          }
        } catch (err) {
          refused(err, 'exec failed');
        } finally {
          client.close();
        }
        if (code === undefined) throw new UnavailableError('the node manager ended the stream without the exit');
        // The command's own exit code, without a message of ours.
        process.exitCode = code;
      }),
    );
}
