/**
 * Process warnings that say nothing useful to a Fedlab user. Entry points (the CLI, the benchmarks'
 * worker processes) call {@link quietIrrelevantWarnings} once; libraries never do.
 */

/**
 * Drops Node's DEP0123 warning and keeps every other one. grpc-js sends the dialled host as TLS SNI
 * even when it is an IP address, which Node flags as deprecated (DEP0123, RFC 6066); Fedlab checks
 * servers by the URN in their certificate, not by name.
 */
export function quietIrrelevantWarnings(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}
