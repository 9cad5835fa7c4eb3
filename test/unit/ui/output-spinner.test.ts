import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Output } from '../../../src/ui/output.js';

function terminal(columns: number): PassThrough & { isTTY: boolean; columns: number; text(): string } {
  const stream = new PassThrough() as PassThrough & { isTTY: boolean; columns: number; text(): string };
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.isTTY = true;
  stream.columns = columns;
  stream.text = () => Buffer.concat(chunks).toString('utf8');
  return stream;
}

describe('Output.spinner on a terminal that reports 0 columns', () => {
  it('prints plain start and end lines instead of animating (ora would loop forever clearing lines)', async () => {
    const stderr = terminal(0);
    const out = new Output({ stdout: new PassThrough(), stderr }, { noColor: true });
    const spinner = await out.spinner('Waiting for login to complete in browser');
    out.info('Logging in as ada@example.com');
    spinner.succeed('Login received from the browser');
    expect(stderr.text()).toBe('Waiting for login to complete in browser\nLogging in as ada@example.com\n✔ Login received from the browser\n');
  });
});
