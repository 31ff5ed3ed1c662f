/**
 * Text from a sliver, a node or a server made safe for a terminal. Whoever can write a sliver's output
 * (or a server's error message, a node's version, a slice's error) would otherwise reach the operator's
 * terminal: clear the screen, retitle the window, move the cursor over what the CLI printed. Every
 * control character is shown instead in caret notation, as `cat -v` shows it:
 *
 * - C0 (U+0000–U+001F): `^@` … `^_` — ESC is `^[`, BEL `^G`, CR `^M`;
 * - DEL (U+007F): `^?`;
 * - C1 (U+0080–U+009F): `M-^@` … `M-^_` — CSI (U+009B) is `M-^[`.
 *
 * JSON output stays exact for scripts: JSON.stringify already escapes C0; {@link printableJson}
 * escapes DEL and C1 too (`\u007f`, `\u009b`), which parse back to the same value.
 */

// C0 but TAB and LF, DEL and C1: what multi-line text must not carry.
const CONTROLS_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// C0 but TAB, DEL and C1: what one line of output must not carry.
const CONTROLS_IN_LINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;
// Every control: what one field or table cell must not carry.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const DEL_AND_C1 = /[\u007f-\u009f]/g;

/** The caret notation of one control character. */
function caret(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code === 0x7f) return '^?';
  if (code >= 0x80) return `M-^${String.fromCharCode(code - 0x80 + 0x40)}`;
  return `^${String.fromCharCode(code + 0x40)}`;
}

/** One field or table cell: every control character (line feeds and tabs too) in caret notation. */
export function printable(text: string): string {
  return text.replace(CONTROLS, caret);
}

/** One line of a sliver's output: tabs kept, every other control character (a line feed too) in caret notation. */
export function printableLine(text: string): string {
  return text.replace(CONTROLS_IN_LINE, caret);
}

/** Several lines of text: line feeds and tabs kept, every other control character in caret notation. */
export function printableText(text: string): string {
  return text.replace(CONTROLS_IN_TEXT, caret);
}

/** A value as JSON (indented when `indent` is given), with DEL and C1 escaped as well as C0. */
export function printableJson(value: unknown, indent?: number): string {
  return String(JSON.stringify(value, null, indent)).replace(DEL_AND_C1, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Writes text to standard output with {@link printableText}. */
export function writeOut(text: string): void {
  process.stdout.write(printableText(text));
}

/** Writes text to standard error with {@link printableText}. */
export function writeErr(text: string): void {
  process.stderr.write(printableText(text));
}

/** A count and its noun, singular or plural as the count needs: `1 sliver`, `2 slivers`, `0 entries` (give `plural` when it is not `${one}s`). */
export function counted(n: number, one: string, plural = `${one}s`): string {
  return `${n} ${n === 1 ? one : plural}`;
}

/**
 * An enum value's name as people read it: without the enum's prefix (`SLICE_STATE_READY` → `READY`);
 * `?` for a value the enum does not name. `values` is the generated enum object (number → name).
 */
export function enumName(values: object, value: number | undefined, prefix: string): string {
  const name = (values as Record<number, string | undefined>)[value ?? 0];
  return typeof name === 'string' ? name.replace(prefix, '') : '?';
}
