/** Plain-text rendering of a ParseReport: a line per failing file, then the summary. */
import { escapeLine, escapeTerminal } from '../ui/escape.js';
import type { ParseFileResult, ParseReport } from './schema.js';

export const PARSE_SUCCESS_MESSAGE = 'No errors detected in your DAGs';

export interface RenderOptions {
  /** Print each error's full message (the traceback) under its file. */
  verbose?: boolean;
}

/** The line that names the problem: the exception line at the end of a traceback, else the first line. */
export function headline(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const exceptionLine = [...lines].reverse().find((l) => /^[A-Za-z_][\w.]*(Error|Exception|Timeout|Exit|Interrupt|Warning)\b/.test(l));
  return exceptionLine ?? lines[0] ?? '';
}

/** A file name may hold a newline (or any control character): escaped, so it cannot forge a line of the report. */
function location(file: ParseFileResult, index: number): string {
  const error = file.errors[index];
  if (error === undefined) return escapeLine(file.path);
  return error.line !== undefined ? `${escapeLine(error.path)}:${error.line}` : escapeLine(error.path);
}

export function renderParseReport(report: ParseReport, options: RenderOptions = {}): string {
  const out: string[] = [];
  for (const file of report.files) {
    if (file.status !== 'error' && !file.exempted) continue;
    file.errors.forEach((error, index) => {
      const mark = file.exempted ? '!' : '✘';
      const note = file.exempted ? ' (exempted by .astro/dag_integrity_exceptions.txt)' : '';
      out.push(`${mark} ${location(file, index)}: ${escapeTerminal(headline(error.message))}${note}`);
      if (options.verbose)
        out.push(
          ...escapeTerminal(error.message, { keepLayout: true })
            .split('\n')
            .map((line) => `    ${line}`),
        );
    });
  }
  const { summary } = report;
  const detail =
    `${summary.files} DAG file${summary.files === 1 ? '' : 's'}, ${summary.dags} DAG${summary.dags === 1 ? '' : 's'}` +
    (summary.cached > 0 ? `, ${summary.cached} unchanged` : '') +
    `, ${(summary.durationMs / 1000).toFixed(1)}s`;
  if (summary.passed) out.push(`${PARSE_SUCCESS_MESSAGE} (${detail})`);
  else out.push(`${summary.failed} of ${summary.files} DAG file${summary.files === 1 ? '' : 's'} failed to import (${detail})`);
  return out.join('\n');
}
