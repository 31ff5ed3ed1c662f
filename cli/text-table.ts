/** Plain-text tables for the CLI and `fedlab up`'s live view: columns padded to their widest cell. */

/** The table's lines: the head, then the rows. Cells are printed as given (make them printable first). */
export function tableLines(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

/** The table as one string. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return tableLines(head, rows).join('\n');
}
