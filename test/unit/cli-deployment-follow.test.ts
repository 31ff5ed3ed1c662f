// What `fedlab deployment show --follow` prints between two reads of a deployment, and when it stops:
// only the output lines the previous read did not show (the window of last lines moves), a state or
// service change once, and the end (deleted, failed, or settled with no service left running).
import { describe, expect, it } from 'vitest';
import { changeLines, hasEnded, newLines } from '../../cli/commands/provider/deployment-follow.js';
import { showText } from '../../cli/commands/provider/deployment-show.js';
import { Deployment, DeploymentState, DeploymentTarget, ServiceState } from '../../services/generated/fedlab/v1/service_provider.js';

const target = (over: Partial<DeploymentTarget> = {}): DeploymentTarget => ({
  ...DeploymentTarget.fromPartial({
    sliverUrn: 'urn:fedlab:a.test:sliver:web-1',
    nodeUrn: 'urn:fedlab:a.test:node:n1',
    site: 'a.test',
    serviceState: ServiceState.SERVICE_STATE_RUNNING,
  }),
  ...over,
});
const deployment = (over: Partial<Deployment> = {}): Deployment => ({
  ...Deployment.fromPartial({ name: 'web', state: DeploymentState.DEPLOYMENT_STATE_READY }),
  targets: [target()],
  ...over,
});

describe('deployment show --follow', () => {
  it('newLines: what the moving window of last lines added', () => {
    expect(newLines([], ['a', 'b'])).toEqual(['a', 'b']);
    expect(newLines(['a', 'b'], ['a', 'b'])).toEqual([]);
    expect(newLines(['a', 'b'], ['a', 'b', 'c'])).toEqual(['c']);
    // The window moved: the first lines fell out.
    expect(newLines(['a', 'b', 'c'], ['c', 'd', 'e'])).toEqual(['d', 'e']);
    // Nothing in common: all of it is new.
    expect(newLines(['a', 'b'], ['x', 'y'])).toEqual(['x', 'y']);
    // Repeated lines: the longest overlap counts.
    expect(newLines(['x', 'x'], ['x', 'x', 'x'])).toEqual(['x']);
  });

  it('changeLines: a state change, a service change and new output, each once, printable', () => {
    const before = deployment({ targets: [target({ lastOutput: ['one'] })] });
    const after = deployment({
      state: DeploymentState.DEPLOYMENT_STATE_DELETING,
      targets: [target({ lastOutput: ['one', 'two\x1b[2J'], serviceState: ServiceState.SERVICE_STATE_BACKOFF, restarts: 1 })],
    });
    expect(changeLines(before, after)).toEqual([
      'web: READY → DELETING',
      'web-1: service running → backoff (restarts 1)',
      'web-1 | two^[[2J',
    ]);
    expect(changeLines(after, after)).toEqual([]);
  });

  it('hasEnded: deleted or failed, or settled with no service left running', () => {
    expect(hasEnded(deployment())).toBe(false);
    expect(hasEnded(deployment({ state: DeploymentState.DEPLOYMENT_STATE_RUNNING_STEPS, targets: [] }))).toBe(false);
    expect(hasEnded(deployment({ state: DeploymentState.DEPLOYMENT_STATE_DELETED }))).toBe(true);
    expect(hasEnded(deployment({ state: DeploymentState.DEPLOYMENT_STATE_FAILED }))).toBe(true);
    expect(hasEnded(deployment({ targets: [target({ serviceState: ServiceState.SERVICE_STATE_EXITED })] }))).toBe(true);
    expect(hasEnded(deployment({ targets: [target({ serviceState: ServiceState.SERVICE_STATE_BACKOFF })] }))).toBe(false);
  });

  it('show --lines: the last N lines of each sliver, saying how many there were', () => {
    const d = deployment({ targets: [target({ lastOutput: ['1', '2', '3', '4', '5', '6', '7'] })] });
    const five = showText(d, 5);
    expect(five).toContain('last 5 of 7 lines (--lines)');
    expect(five.trimEnd().split('\n').slice(-5)).toEqual(['3', '4', '5', '6', '7']);
    expect(showText(d, 10).trimEnd().split('\n').slice(-7)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    expect(showText(d, 10)).not.toContain('(--lines)');
    expect(showText(d, 0)).not.toContain('\n--- ');
  });
});
