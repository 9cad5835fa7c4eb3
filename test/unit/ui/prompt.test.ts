// The numbered choice on a terminal (src/ui/prompt.ts), driven through fake terminal streams.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InterruptedError, NeedsInputError, UserError } from '../../../src/errors.js';
import { select } from '../../../src/ui/prompt.js';
import { Output } from '../../../src/ui/output.js';

function terminal() {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
  let written = '';
  stderr.on('data', (c: Buffer) => (written += c.toString()));
  const out = new Output({ stdout: new PassThrough(), stderr, stdin }, { noColor: true });
  /** Resolves once stderr shows `text` for the `times`-th time: the prompt is waiting for the next line. */
  const shown = (text: string, times = 1) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (written.split(text).length - 1 >= times) {
          stderr.off('data', check);
          resolve();
        }
      };
      stderr.on('data', check);
      check();
    });
  return { out, stdin, text: () => written, shown };
}

const deployments = [
  { label: 'analytics (dep-1)', value: 'dep-1' },
  { label: 'reporting (dep-2)', value: 'dep-2' },
  { label: 'ingest (dep-3)', value: 'dep-3' },
];

describe('select on a terminal', () => {
  it('asks again after a typo, as the user types line by line, and takes the first valid answer', async () => {
    const { out, stdin, text, shown } = terminal();
    const choice = select(out, 'Select a Deployment', deployments, ['<deployment-id>']);
    await shown('> ');
    stdin.write('2x\n');
    await shown('> ', 2);
    stdin.write('\n');
    await shown('> ', 3);
    stdin.write('4\n');
    await shown('> ', 4);
    stdin.write(' 3 \n');
    expect(await choice).toBe('dep-3');
    expect(text()).toContain('"2x" is not one of the choices 1-3. Type a number from 1 to 3.');
    expect(text()).toContain('"" is not one of the choices 1-3.');
    expect(text()).toContain('"4" is not one of the choices 1-3.');
  });

  it('keeps answers typed ahead (pasted at once) instead of dropping them between questions', async () => {
    const { out, stdin, text } = terminal();
    stdin.write('0\nnope\n1\n');
    expect(await select(out, 'Select a Deployment', deployments, ['<deployment-id>'])).toBe('dep-1');
    expect(text().split('is not one of the choices').length - 1).toBe(2);
  });

  it('ends with a clear error when the input ends without a valid answer', async () => {
    const { out, stdin } = terminal();
    stdin.end('9\n');
    const error = await select(out, 'Select a Deployment', deployments, ['<deployment-id>']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe('Select a Deployment: no choice was made (the input ended).');
  });

  it('stops waiting on Ctrl-C', async () => {
    const { out, shown } = terminal();
    const controller = new AbortController();
    const choice = select(out, 'Select a Deployment', deployments, ['<deployment-id>'], controller.signal).catch((e: unknown) => e);
    await shown('> ');
    controller.abort('SIGINT');
    const error = await choice;
    expect(error).toBeInstanceOf(InterruptedError);
  });

  it('shows each label on one line, whatever the platform sent', async () => {
    const { out, stdin, text } = terminal();
    stdin.write('1\n');
    await select(out, 'Select a Deployment', [{ label: 'evil\u001b[2J\n  2  forged (dep-x)', value: 'x' }], ['<deployment-id>']);
    expect(text()).toContain('   1  evil\\x1b[2J\\n  2  forged (dep-x)\n');
  });

  it('never asks without a terminal', async () => {
    const out = new Output({ stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough() });
    await expect(select(out, 'Select a Deployment', deployments, ['<deployment-id>'])).rejects.toBeInstanceOf(NeedsInputError);
  });
});
