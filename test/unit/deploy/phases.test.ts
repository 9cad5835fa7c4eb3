import { describe, expect, it } from 'vitest';
import { PhaseRunner, type DeployEvent } from '../../../src/deploy/kernel/phases.js';

function runner(clock: { t: number }) {
  const events: string[] = [];
  const controller = new AbortController();
  const emit = (e: DeployEvent) => {
    if (e.type === 'phase') events.push(`${e.phase}:${e.state}`);
  };
  return { runner: new PhaseRunner(emit, controller.signal, () => clock.t), events, controller };
}

describe('PhaseRunner.early', () => {
  it('reports the start at once and the end only when adopted, timed by the work itself', async () => {
    const clock = { t: 0 };
    const { runner: r, events } = runner(clock);
    const early = r.early('bundle', async () => {
      clock.t += 30;
      return 'packed';
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['bundle:start']);
    clock.t += 500; // the deploy decides later: not part of the phase's time
    await expect(early.adopt()).resolves.toBe('packed');
    expect(events).toEqual(['bundle:start', 'bundle:done']);
    expect(r.timings.bundle).toBe(30);
    await expect(early.adopt()).rejects.toThrow(/already adopted or dropped/);
  });

  it('adopting a failed early phase reports it failed and rethrows', async () => {
    const { runner: r, events } = runner({ t: 0 });
    const early = r.early('bundle', async () => Promise.reject(new Error('no dags folder')));
    await expect(early.adopt()).rejects.toThrow('no dags folder');
    expect(events).toEqual(['bundle:start', 'bundle:failed']);
  });

  it('drop aborts the work, reports it skipped at once, swallows its failure and leaves no timing', async () => {
    const { runner: r, events } = runner({ t: 0 });
    let aborted = false;
    r.early('bundle', (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(new Error('x'))))));
    expect(r.interruptedDuring()).toEqual(['bundle']);
    r.dropEarly();
    expect(aborted).toBe(true);
    expect(events).toEqual(['bundle:start', 'bundle:skipped']);
    expect(r.timings.bundle).toBeUndefined();
    await new Promise((resolve) => setImmediate(resolve));
    r.dropEarly();
    expect(events).toEqual(['bundle:start', 'bundle:skipped']);
  });

  it('a dropped phase winding down does not hide the same phase running again', async () => {
    const { runner: r, controller } = runner({ t: 0 });
    let finish!: () => void;
    const early = r.early('bundle', () => new Promise<void>((resolve) => (finish = resolve)));
    early.drop();
    const again = r.run('bundle', () => new Promise<void>(() => undefined));
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort('SIGINT');
    expect(r.interruptedDuring()).toEqual(['bundle']);
    void again.catch(() => undefined);
  });
});
