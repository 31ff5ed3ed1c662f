/**
 * A closed standard output (`fedlab … | head -1`) or error ends the command quietly: no `Error: write
 * EPIPE` stack, and the exit status the command had set so far (0 if none). The entry installs it once.
 */

/** Whether an output stream error means the reader went away. */
function isClosed(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED' || err.code === 'ECONNRESET';
}

/** Commands that handle a closed output themselves while they run (fedlab up must go on stopping). */
let claims = 0;

/**
 * Claims closed outputs for the caller until the returned release is called: meanwhile the handler
 * leaves a closed stdout or stderr to the caller's own stream listeners instead of ending the process.
 */
export function claimClosedOutputs(): () => void {
  claims++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    claims--;
  };
}

/** Installs the handler: ends the process quietly when stdout or stderr is closed under it; other stream errors are thrown as before. */
export function closedOutputs(): void {
  const onError = (err: NodeJS.ErrnoException): void => {
    if (!isClosed(err)) throw err;
    if (claims > 0) return;
    const code = process.exitCode;
    process.exit(typeof code === 'number' ? code : code === undefined ? 0 : Number(code) || 0);
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
}
