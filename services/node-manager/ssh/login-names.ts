/**
 * SSH login names of slivers: the slice's name (PlanetLab style), and when a
 * live sliver already has it (another slice of that name, or a second sliver
 * of the same slice), the name with `-2`, `-3`, … (docs/node-manager.md, "SSH").
 */
import { parseUrn } from '../../core/identity/urn.js';

/** The first free login name for a sliver of `sliceUrn`, given the names live slivers hold. */
export function pickLogin(sliceUrn: string, taken: ReadonlySet<string>): string {
  const base = parseUrn(sliceUrn).name;
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) {
    const name = `${base}-${n}`;
    if (!taken.has(name)) return name;
  }
}
