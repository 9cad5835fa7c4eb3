/** Plain-text rendering of a ParseReport: a line per failing file, then the summary. */
import type { ParseFileResult, ParseReport } from './schema.js';

export const PARSE_SUCCESS_MESSAGE = 'No errors detected in your DAGs';

export interface RenderOptions {
  /** Print each error's full message (the traceback) under its file. */
  verbose?: boolean;
}

// C0 and C1 control characters, DEL, and the Unicode controls that reorder or hide text on a terminal.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const CONTROL_KEEPING_NEWLINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

function escapeChar(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  if (char === '\n') return '\\n';
  if (char === '\r') return '\\r';
  if (char === '\t') return '\\t';
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * Text from DAG files (their names, exception messages, output) as it may be printed on a terminal: every control
 * character shown as an escape, so none can move the cursor, recolour, retitle or hide what follows.
 * `keepLines` keeps newlines and tabs (multi-line tracebacks), escaping the rest.
 */
export function escapeControl(text: string, options: { keepLines?: boolean } = {}): string {
  return text.replace(options.keepLines ? CONTROL_KEEPING_NEWLINES : CONTROL, escapeChar);
}

/** The line that names the problem: the exception line at the end of a traceback, else the first line. */
export function headline(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const exceptionLine = [...lines].reverse().find((l) => /^[A-Za-z_][\w.]*(Error|Exception|Timeout|Exit|Interrupt|Warning)\b/.test(l));
  return exceptionLine ?? lines[0] ?? '';
}

function location(file: ParseFileResult, index: number): string {
  const error = file.errors[index];
  if (error === undefined) return escapeControl(file.path);
  return error.line !== undefined ? `${escapeControl(error.path)}:${error.line}` : escapeControl(error.path);
}

export function renderParseReport(report: ParseReport, options: RenderOptions = {}): string {
  const out: string[] = [];
  for (const file of report.files) {
    if (file.status !== 'error' && !file.exempted) continue;
    file.errors.forEach((error, index) => {
      const mark = file.exempted ? '!' : '✘';
      const note = file.exempted ? ' (exempted by .astro/dag_integrity_exceptions.txt)' : '';
      out.push(`${mark} ${location(file, index)}: ${escapeControl(headline(error.message))}${note}`);
      if (options.verbose) out.push(...escapeControl(error.message, { keepLines: true }).split('\n').map((line) => `    ${line}`));
    });
  }
  const { summary } = report;
  const detail = `${summary.files} DAG file${summary.files === 1 ? '' : 's'}, ${summary.dags} DAG${summary.dags === 1 ? '' : 's'}` +
    (summary.cached > 0 ? `, ${summary.cached} unchanged` : '') +
    `, ${(summary.durationMs / 1000).toFixed(1)}s`;
  if (summary.passed) out.push(`${PARSE_SUCCESS_MESSAGE} (${detail})`);
  else out.push(`${summary.failed} of ${summary.files} DAG file${summary.files === 1 ? '' : 's'} failed to import (${detail})`);
  return out.join('\n');
}
