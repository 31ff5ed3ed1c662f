/**
 * An Exec request checked before any credential work: argv and env bounds
 * (env names `[A-Za-z_][A-Za-z0-9_]*`, no NUL, sizes capped), and the copy of
 * a command's output into the sliver's recent-output tail.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { ExecChunk } from './drivers/driver.js';
import type { OutputTail } from './output-tail.js';

/** Bounds of one Exec request. */
export const EXEC_LIMITS = {
  argv: 256,
  argBytes: 32 * 1024,
  argvBytes: 256 * 1024,
  env: 128,
  envBytes: 64 * 1024,
  stdinBytes: 1024 * 1024,
} as const;

/** An exec request in domain terms. */
export interface ExecInput {
  readonly sliverUrn: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly stdin?: Buffer | undefined;
  readonly timeoutMs: number;
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Checks argv: a program and at most EXEC_LIMITS of arguments, no NUL bytes. */
export function checkArgv(argv: readonly string[]): string[] {
  if (!Array.isArray(argv) || argv.length === 0)
    throw new InvalidArgumentError('argv must name a program (argv[0]) and its arguments', { field: 'argv' });
  if (argv.length > EXEC_LIMITS.argv)
    throw new InvalidArgumentError(`argv has ${argv.length} entries; at most ${EXEC_LIMITS.argv}`, { field: 'argv' });
  let total = 0;
  for (const [i, a] of argv.entries()) {
    if (typeof a !== 'string') throw new InvalidArgumentError(`argv[${i}] must be a string`, { field: 'argv' });
    if (a.includes('\0')) throw new InvalidArgumentError(`argv[${i}] contains a NUL byte`, { field: 'argv' });
    const bytes = Buffer.byteLength(a);
    if (bytes > EXEC_LIMITS.argBytes)
      throw new InvalidArgumentError(`argv[${i}] is ${bytes} bytes; at most ${EXEC_LIMITS.argBytes}`, { field: 'argv' });
    total += bytes;
  }
  if (argv[0] === '') throw new InvalidArgumentError('argv[0] must name a program', { field: 'argv' });
  if (total > EXEC_LIMITS.argvBytes)
    throw new InvalidArgumentError(`argv is ${total} bytes in all; at most ${EXEC_LIMITS.argvBytes}`, { field: 'argv' });
  return [...argv];
}

/** Checks env: names [A-Za-z_][A-Za-z0-9_]*, not FEDLAB_*, values without NUL, sizes capped. */
export function checkEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  const entries = Object.entries(env ?? {});
  if (entries.length > EXEC_LIMITS.env)
    throw new InvalidArgumentError(`env has ${entries.length} variables; at most ${EXEC_LIMITS.env}`, { field: 'env' });
  let total = 0;
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (!ENV_KEY.test(k))
      throw new InvalidArgumentError(`env name ${JSON.stringify(k.slice(0, 80))} must match [A-Za-z_][A-Za-z0-9_]*`, { field: 'env' });
    if (k.startsWith('FEDLAB_')) throw new InvalidArgumentError(`env name ${k} is reserved for the node manager`, { field: 'env' });
    if (typeof v !== 'string' || v.includes('\0'))
      throw new InvalidArgumentError(`env ${k} must be a string without NUL bytes`, { field: 'env' });
    total += k.length + Buffer.byteLength(v);
    out[k] = v;
  }
  if (total > EXEC_LIMITS.envBytes)
    throw new InvalidArgumentError(`env is ${total} bytes in all; at most ${EXEC_LIMITS.envBytes}`, { field: 'env' });
  return out;
}

/** Passes chunks through, copying the output into the sliver's tail. */
export async function* teeOutput(chunks: AsyncIterable<ExecChunk>, tail: ReturnType<OutputTail['writer']>): AsyncIterable<ExecChunk> {
  try {
    for await (const chunk of chunks) {
      if (chunk.kind !== 'exit') tail.write(chunk.kind, chunk.data);
      yield chunk;
    }
  } finally {
    tail.end();
  }
}
