/** The `label: value` lines `fedlab certs` prints for a person. */
import { checkDays } from '../../../certs/names.js';
import { parsePositiveInt } from '../../flag-values.js';

/** One line: the label and a colon padded to 20 columns, then the value. */
export function line(label: string, value: string): string {
  return `${`${label}:`.padEnd(20)}${value}\n`;
}

/** `--days N`: a validity in days within what the tooling allows (undefined when absent). */
export function parseDays(value: string | undefined): number | undefined {
  return value === undefined ? undefined : checkDays(parsePositiveInt(value, '--days'));
}
