/** What the entry (cli/main.ts) read from its environment and passes to the command tree. */
import type { ProfileContext } from './profile-flags.js';

/** The entry's context for building the command tree. */
export interface ProgramContext {
  /** `--json` was given: usage errors too are the JSON error object on stderr. */
  readonly json?: boolean;
  /** The profile FEDLAB_PROFILE names and where the profiles file is. */
  readonly profiles?: ProfileContext;
}
