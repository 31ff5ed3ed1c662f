// The CLI's wording: counts singular or plural as the count needs, and enum names without their prefix.
import { describe, expect, it } from 'vitest';
import { reportText } from '../../cli/commands/federation/check.js';
import type { CheckTarget } from '../../cli/commands/federation/check-target.js';
import { withOperandHint } from '../../cli/program.js';
import { counted, enumName } from '../../cli/printable.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';

describe('CLI wording', () => {
  it('counted: one sliver, two slivers, no entries', () => {
    expect(counted(1, 'sliver')).toBe('1 sliver');
    expect(counted(2, 'sliver')).toBe('2 slivers');
    expect(counted(0, 'entry', 'entries')).toBe('0 entries');
    expect(counted(1, 'entry', 'entries')).toBe('1 entry');
  });

  it('enumName: SLICE_STATE_READY is READY; an unknown value is ?', () => {
    expect(enumName(SliceState, SliceState.SLICE_STATE_READY, 'SLICE_STATE_')).toBe('READY');
    expect(enumName(SliceState, undefined, 'SLICE_STATE_')).toBe('UNSPECIFIED');
    expect(enumName(SliceState, 99, 'SLICE_STATE_')).toBe('?');
  });

  it('federation check counts one slice, sliver and node in the singular', () => {
    const summary = {
      sliceAuthority: 'urn:fedlab:a.test:authority:sa',
      slices: 1,
      sites: [{ domain: 'a.test', read: true, slices: 1, slivers: 1, nodes: 1, nodesRead: 1, sliversOnNodes: 2 }],
    };
    const text = reportText({} as CheckTarget, { clean: true, findings: [], notes: [], summary });
    expect(text).toContain('urn:fedlab:a.test:authority:sa: 1 slice\n');
    expect(text).toContain('a.test: 1 slice, 1 sliver held; 1 of 1 node read, 2 slivers on them');
    expect(text).not.toMatch(/\(s\)/);
  });

  it("an unknown option gets the hint that an argument beginning with '-' goes after --; other errors do not", () => {
    expect(withOperandHint("error: unknown option '-Ab3'")).toMatch(
      /^error: unknown option '-Ab3'; .*after --, e\.g\. fedlab member revoke -- URN JTI$/,
    );
    expect(withOperandHint("error: missing required argument 'urn'")).toBe("error: missing required argument 'urn'");
  });
});
