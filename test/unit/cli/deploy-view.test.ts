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
