// `fedlab up` gives every MA and the slice authority a dashboard port: a fresh plan has them, a directory
// made before dashboards gets free ones when it is opened again, and a taken one is replaced like the others.
import { describe, expect, it } from 'vitest';
import { addDashboardPorts, planFederation, plannedPorts, replacePort } from '../../cli/up/plan.js';

describe('fedlab up dashboard ports', () => {
  it('a fresh plan has a distinct dashboard port for every MA and the slice authority', async () => {
    const state = await planFederation(['planetlab', 'emulab'], 1);
    const ports = plannedPorts(state);
    expect(new Set(ports).size).toBe(ports.length);
    for (const s of state.sites) expect(ports).toContain(s.dashboard_port);
    expect(ports).toContain(state.sa_dashboard_port);
    expect(await addDashboardPorts(state)).toBe(false);
  });

  it('an older plan without them gets free ones, distinct from its other ports; a taken one is replaced', async () => {
    const state = await planFederation(['planetlab'], 2);
    const site = state.sites[0] as (typeof state.sites)[number];
    delete site.dashboard_port;
    delete state.sa_dashboard_port;
    const before = plannedPorts(state);
    expect(await addDashboardPorts(state)).toBe(true);
    expect(before).not.toContain(site.dashboard_port);
    expect(before).not.toContain(state.sa_dashboard_port);
    const all = plannedPorts(state);
    expect(new Set(all).size).toBe(all.length);
    const old = Number(state.sa_dashboard_port);
    expect(replacePort(state, old, 1)).toBe(true);
    expect(state.sa_dashboard_port).toBe(1);
    expect(replacePort(state, Number(site.dashboard_port), 2)).toBe(true);
    expect(site.dashboard_port).toBe(2);
  });
});
