import { describe, expect, it } from 'vitest';
import { headline, PARSE_SUCCESS_MESSAGE, renderParseReport } from '../../../src/parse/render.js';
import { escapeTerminal as escapeControl } from '../../../src/ui/escape.js';
import type { ParseReport } from '../../../src/parse/schema.js';

const summary: ParseReport['summary'] = {
  passed: true,
  files: 2,
  failed: 0,
  exempted: 0,
  skipped: 0,
  cached: 1,
  dags: 2,
  durationMs: 1234,
  mode: 'host',
  airflowVersion: '3.1.8',
  dagsFolder: 'dags',
  exceptionsFile: '.astro/dag_integrity_exceptions.txt',
  sandbox: {
    network: 'none',
    projectReadOnly: true,
    projectView: 'overlay',
    pidsLimit: 1024,
    hostFilesystem: 'read-only',
    memoryLimitMb: 2048,
    importTimeoutSeconds: null,
  },
};

describe('headline', () => {
  it('picks the exception line of a traceback, even with lines after it', () => {
    const timeout =
      'Traceback (most recent call last):\n  File "x.py", line 3\nairflow.exceptions.AirflowTaskTimeout: DagBag import timeout\nPlease take a look\n* https://docs, PID: 12';
    expect(headline(timeout)).toBe('airflow.exceptions.AirflowTaskTimeout: DagBag import timeout');
    expect(headline('  File "x.py", line 4\n    with DAG()\n        ^\nSyntaxError: expected \':\'')).toBe("SyntaxError: expected ':'");
    expect(headline('The import of dags/x.py ended its process (exit code 3)')).toBe('The import of dags/x.py ended its process (exit code 3)');
  });
});

describe('renderParseReport', () => {
  it('prints the success message when nothing fails', () => {
    const text = renderParseReport({ files: [], summary });
    expect(text).toContain(PARSE_SUCCESS_MESSAGE);
    expect(text).toContain('1 unchanged');
  });

  it('prints a line per failing error with file and line, then the count', () => {
    const report: ParseReport = {
      files: [
        {
          path: 'dags/a.py',
          status: 'error',
          dagIds: [],
          errors: [{ path: 'dags/a.py', line: 7, kind: 'import', message: 'Traceback\nValueError: boom' }],
          exempted: false,
          warnings: [],
          durationMs: 1,
          cached: false,
        },
        { path: 'dags/b.py', status: 'ok', dagIds: ['b'], errors: [], exempted: false, warnings: [], durationMs: 1, cached: false },
      ],
      summary: { ...summary, passed: false, failed: 1 },
    };
    expect(renderParseReport(report).split('\n')).toEqual([
      '✘ dags/a.py:7: ValueError: boom',
      '1 of 2 DAG files failed to import (2 DAG files, 2 DAGs, 1 unchanged, 1.2s)',
    ]);
    expect(renderParseReport(report, { verbose: true })).toContain('    Traceback');
  });

  it('escapes control characters in file names and messages, so DAG files cannot drive the terminal', () => {
    const name = 'dags/evil\u001b]0;pwned\u0007\nname.py';
    const report: ParseReport = {
      files: [
        {
          path: name,
          status: 'error',
          dagIds: [],
          errors: [{ path: name, kind: 'import', message: 'Traceback\r\u001b[2J\u202eValueError: \u001b[31mred\u009b' }],
          exempted: false,
          warnings: [],
          durationMs: 1,
          cached: false,
        },
      ],
      summary: { ...summary, passed: false, failed: 1 },
    };
    for (const text of [renderParseReport(report), renderParseReport(report, { verbose: true })]) {
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/u);
      expect(text).toContain('dags/evil\\x1b]0;pwned\\x07\\nname.py');
    }
    expect(renderParseReport(report, { verbose: true })).toContain('\\x1b[31mred\\x9b');
  });
});

describe('escapeControl', () => {
  it('keeps printable text, newlines only when asked', () => {
    expect(escapeControl('plain text, ünïcödé ✓')).toBe('plain text, ünïcödé ✓');
    expect(escapeControl('a\nb\tc')).toBe('a\\nb\\tc');
    expect(escapeControl('a\nb\tc\u001b', { keepLayout: true })).toBe('a\nb\tc\\x1b');
    expect(escapeControl('\u2066x\u2069')).toBe('\\u2066x\\u2069');
  });
});
