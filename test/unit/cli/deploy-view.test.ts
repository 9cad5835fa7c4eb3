import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createDeployView } from '../../../src/cli/deploy-view.js';
import { Output } from '../../../src/ui/output.js';

function output(tty: boolean) {
  const chunks: string[] = [];
  const stderr = Object.assign(new PassThrough(), {
    isTTY: tty,
    columns: 100,
    cursorTo: () => true,
    moveCursor: () => true,
    clearLine: () => true,
  });
  stderr.on('data', (c: Buffer) => chunks.push(c.toString()));
  const stdout = new PassThrough();
  const out = new Output({ stdout, stderr, stdin: Object.assign(new PassThrough(), { isTTY: tty }) }, { noColor: true });
  return { out, text: () => chunks.join('') };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('deploy view', () => {
  it('draws one spinner for phases that run together on a terminal, and keeps a line per finished phase', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { out, text } = output(true);
    const view = createDeployView(out);
    view.emit({ type: 'phase', phase: 'push', state: 'start' });
    view.emit({ type: 'phase', phase: 'upload', state: 'start' });
    view.emit({ type: 'progress', phase: 'upload', bytesDone: 512, bytesTotal: 1024 });
    await tick();
    view.emit({ type: 'phase', phase: 'upload', state: 'done' });
    view.emit({ type: 'phase', phase: 'push', state: 'done' });
    view.close();
    await tick();
    const written = text();
    // ora warns (on the console) when a second spinner starts on the same stream.
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(written).toMatch(/✔ Uploading DAGs \(\d+\.\ds\)/);
    expect(written).toMatch(/✔ Pushing image to Astronomer registry \(\d+\.\ds\)/);
  });

  it('prints plain lines in logs, with byte progress every 25%', () => {
    const { out, text } = output(false);
    const view = createDeployView(out);
    view.emit({ type: 'phase', phase: 'upload', state: 'start' });
    for (let done = 0; done <= 1000; done += 100) view.emit({ type: 'progress', phase: 'upload', bytesDone: done, bytesTotal: 1000 });
    view.emit({ type: 'phase', phase: 'upload', state: 'failed' });
    const lines = text().trim().split('\n');
    expect(lines[0]).toBe('Uploading DAGs…');
    expect(lines.filter((l) => l.startsWith('  Uploading DAGs: ['))).toHaveLength(5);
    expect(lines.at(-1)).toBe('✖ Uploading DAGs failed');
  });

  it('shows the label a phase names itself with, whatever its wording (Astro and Software alike)', () => {
    const { out, text } = output(false);
    const view = createDeployView(out);
    view.emit({ type: 'phase', phase: 'build', state: 'start', label: 'Checking the prebuilt image' });
    view.emit({ type: 'phase', phase: 'build', state: 'done' });
    view.emit({ type: 'phase', phase: 'push', state: 'start', label: 'pushing image to configured registry' });
    view.emit({ type: 'phase', phase: 'push', state: 'failed' });
    const lines = text().trim().split('\n');
    expect(lines[0]).toBe('Checking the prebuilt image…');
    expect(lines[1]).toMatch(/^✔ Checking the prebuilt image \(\d+\.\ds\)$/);
    expect(lines[2]).toBe('pushing image to configured registry…');
    expect(lines.at(-1)).toBe('✖ pushing image to configured registry failed');
  });
});

describe('deploy view: what a finished step claims', () => {
  it('puts no ✔ beside a parse or test step, whose findings follow on their own lines', () => {
    const { out, text } = output(false);
    const view = createDeployView(out);
    view.emit({ type: 'phase', phase: 'parse', state: 'start' });
    view.emit({ type: 'phase', phase: 'parse', state: 'done' });
    view.emit({ type: 'warning', message: 'dags/broken.py:3: ImportError: No module named nope' });
    view.emit({ type: 'phase', phase: 'pytest', state: 'start' });
    view.emit({ type: 'phase', phase: 'pytest', state: 'done' });
    view.close();
    const lines = text().trim().split('\n');
    expect(lines).toContain('Checking your DAGs for errors: finished (0.0s)');
    expect(lines).toContain('Running your tests: finished (0.0s)');
    expect(text()).not.toContain('✔');
  });

  it('never shows a push percentage going backwards as layers appear, in logs or on a terminal', async () => {
    // Layer totals become known one by one: 10 MiB, then 10 + 30, then 10 + 30 + 60.
    const MiB = 1024 * 1024;
    const steps: [number, number][] = [
      [0, 10 * MiB],
      [5 * MiB, 10 * MiB],
      [10 * MiB, 10 * MiB],
      [10 * MiB, 40 * MiB],
      [25 * MiB, 40 * MiB],
      [25 * MiB, 100 * MiB],
      [60 * MiB, 100 * MiB],
      [100 * MiB, 100 * MiB],
    ];
    for (const tty of [false, true]) {
      const { out, text } = output(tty);
      const view = createDeployView(out);
      view.emit({ type: 'phase', phase: 'push', state: 'start' });
      for (const [done, total] of steps) {
        view.emit({ type: 'progress', phase: 'push', bytesDone: done, bytesTotal: total });
        if (tty) await tick();
      }
      view.emit({ type: 'phase', phase: 'push', state: 'done' });
      view.close();
      await tick();
      const shown = [...text().matchAll(/(\d+)%/g)].map((m) => Number(m[1]));
      for (let i = 1; i < shown.length; i++) expect(shown[i], `${tty ? 'terminal' : 'logs'}: ${shown.join(', ')}`).toBeGreaterThanOrEqual(shown[i - 1]!);
      // Logs get a line per new layer; a terminal redraws on its own clock, so only the order is asserted there.
      if (!tty) expect(text()).toContain('Pushing image to Astronomer registry: 25.0 MiB of 100.0 MiB known so far');
      expect(text()).toMatch(/✔ Pushing image to Astronomer registry/);
    }
  });
});
