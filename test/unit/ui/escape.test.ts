// Foreign text reaches the terminal with its control characters shown, never acted on (src/ui/escape.ts, Output).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { escapeJsonText, escapeLine, escapeTerminal } from '../../../src/ui/escape.js';
import { Output } from '../../../src/ui/output.js';
import { UserError } from '../../../src/errors.js';

function sink(isTTY = false): PassThrough & { isTTY: boolean; text(): string } {
  const stream = new PassThrough() as PassThrough & { isTTY: boolean; text(): string };
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.isTTY = isTTY;
  stream.text = () => Buffer.concat(chunks).toString('utf8');
  return stream;
}

/** Every character a terminal may act on, besides newline and tab where layout allows them. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const HOSTILE = 'evil\u001b[31mRED\u001b]0;title\u0007\r\u009b2J\u202egnp.exe\u2066x\u2069\u0000\u007f';

describe('escapeTerminal', () => {
  it('shows ESC, C0, C1, DEL and bidi characters as visible escapes', () => {
    expect(escapeLine(HOSTILE)).toBe('evil\\x1b[31mRED\\x1b]0;title\\x07\\r\\x9b2J\\u202egnp.exe\\u2066x\\u2069\\x00\\x7f');
    expect(escapeLine('a\nb\tc')).toBe('a\\nb\\tc');
  });

  it('keeps newlines and tabs when asked (multi-line text), turning CRLF into LF and escaping a lone CR', () => {
    expect(escapeTerminal('line 1\r\n\tline 2\rforged', { keepLayout: true })).toBe('line 1\n\tline 2\\rforged');
    expect(escapeTerminal(HOSTILE, { keepLayout: true })).not.toMatch(UNSAFE);
  });

  it('leaves ordinary text, including non-ASCII letters and symbols, alone', () => {
    const text = 'Déploiement ✔ 部署 — dags/über.py:3: ImportError';
    expect(escapeLine(text)).toBe(text);
  });

  it('escapes in JSON what JSON.stringify leaves raw, keeping the value', () => {
    const value = { name: HOSTILE };
    const text = escapeJsonText(JSON.stringify(value));
    expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('Output', () => {
  it('escapes foreign text in every method, but keeps its own colours', () => {
    const stdout = sink();
    const stderr = sink(true);
    const out = new Output({ stdout, stderr }, { forceColor: true });
    out.result(`✘ dags/${HOSTILE}.py: boom \u001b[2J`);
    out.info('file %s', 'two\nlines\u001b[2J');
    out.warn(`warning about ${HOSTILE}`);
    out.printError(new UserError(`refused: \u001b[2J${HOSTILE}`));
    expect(stdout.text()).not.toMatch(UNSAFE);
    expect(stdout.text()).toContain('boom \\x1b[2J');
    // %s arguments are one line of foreign text: their newline is escaped too.
    expect(stderr.text()).toContain('file two\\nlines\\x1b[2J\n');
    // The only raw ESCs on stderr are the colours astro applied itself.
    const withoutOwnStyling = stderr.text().replaceAll('\u001b[33m', '').replaceAll('\u001b[39m', '').replaceAll('\u001b[31m', '');
    expect(withoutOwnStyling).not.toMatch(UNSAFE);
    expect(stderr.text()).toContain('\u001b[33mwarning about evil\\x1b[31mRED');
    expect(stderr.text()).toContain('\u001b[31mError:\u001b[39m refused: \\x1b[2J');
  });

  it('cannot be tricked into styling by text that imitates its markers', () => {
    const stderr = sink(true);
    const out = new Output({ stdout: sink(), stderr }, { forceColor: true });
    // Whatever the marker format, foreign text does not know this process's tag.
    out.info('\uE000000000000000:31\uE001red?');
    expect(stderr.text()).toBe('\uE000000000000000:31\uE001red?\n');
  });

  it('redact() makes a streamed chunk safe: secrets hidden, controls escaped, lines kept', () => {
    const out = new Output({ stdout: sink(), stderr: sink() });
    out.addSecret('super-secret-token');
    expect(out.redact('token super-secret-token\n\u001b[2Jnext\r\n')).toBe('token ***\n\\x1b[2Jnext\n');
  });

  it('prints one JSON document whose strings carry no raw control or bidi character', () => {
    const stdout = sink();
    const out = new Output({ stdout, stderr: sink() }, { json: true });
    out.setDocument({ files: [{ path: `dags/${HOSTILE}.py`, message: 'boom \u001b[2J' }] });
    out.flushDocument();
    expect(stdout.text()).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(stdout.text())).toEqual({ files: [{ path: `dags/${HOSTILE}.py`, message: 'boom \u001b[2J' }] });
  });

  it('escapes spinner texts on a terminal too', async () => {
    const stderr = sink(true);
    Object.assign(stderr, { columns: 80, cursorTo: () => true, moveCursor: () => true, clearLine: () => true });
    const out = new Output({ stdout: sink(), stderr }, { noColor: true });
    const spinner = await out.spinner('Checking \u001b[2J');
    spinner.update('still \u009b2J');
    spinner.fail(`failed on ${HOSTILE}`);
    const text = stderr.text();
    expect(text).toContain('failed on evil\\x1b[31mRED');
    // ora draws with its own cursor sequences; none of the foreign ones got through.
    expect(text).not.toContain('\u001b[2J');
    expect(text).not.toContain('\u009b');
    expect(text).not.toContain('\u202e');
  });

  it('still prints one document with --json when a command set none', () => {
    const stdout = sink();
    const out = new Output({ stdout, stderr: sink() }, { json: true });
    out.flushDocument();
    expect(JSON.parse(stdout.text())).toEqual({});
  });
});
