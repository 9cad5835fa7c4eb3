import { describe, expect, it } from 'vitest';
import { duplicateDagMessage, mergeResults, parseExceptions, type FileOutcome } from '../../../src/parse/merge.js';
import type { FileMessage, ListingMessage } from '../../../src/parse/schema.js';

const home = '/p';
function message(
  rel: string,
  dags: { id: string; origin?: string; fileloc?: string }[],
  errors: { rel: string; text: string; kind?: 'import' | 'timeout' | 'crash'; line?: number }[] = [],
): FileMessage {
  return {
    type: 'file',
    path: `${home}/${rel}`,
    relPath: rel,
    durationMs: 3,
    output: '',
    outputDropped: 0,
    status: 'parsed',
    errors: errors.map((e) => ({ path: `${home}/${e.rel}`, relPath: e.rel, message: e.text, kind: e.kind ?? 'import', ...(e.line ? { line: e.line } : {}) })),
    dags: dags.map((d) => ({
      dagId: d.id,
      fileloc: d.fileloc ?? `${home}/${rel}`,
      relFileloc: (d.fileloc ?? `${home}/${rel}`).slice(home.length + 1),
      origin: d.origin ?? null,
    })),
    warnings: [],
  };
}

function run(messages: FileMessage[], exceptions = new Set<string>(), skipped: ListingMessage['skipped'] = [], unreadable: ListingMessage['unreadable'] = []) {
  const listing: ListingMessage = { type: 'listing', files: messages.map((m) => ({ path: m.path, relPath: m.relPath })), skipped, unreadable };
  const outcomes = new Map<string, FileOutcome>(messages.map((m) => [m.path, { message: m, cached: false }]));
  return mergeResults(listing, outcomes, exceptions);
}

describe('mergeResults', () => {
  it("reports a duplicate DAG id on the file bagged second, with DagBag's message", () => {
    const [first, second] = run([message('dags/b.py', [{ id: 'x' }]), message('dags/a.py', [{ id: 'x' }, { id: 'y' }])]);
    expect(first).toMatchObject({ path: 'dags/b.py', status: 'ok', dagIds: ['x'] });
    expect(second).toMatchObject({ path: 'dags/a.py', status: 'error', dagIds: ['y'] });
    expect(second?.errors).toEqual([{ path: 'dags/a.py', kind: 'duplicate', message: duplicateDagMessage('x', '/p/dags/a.py', '/p/dags/b.py') }]);
    expect(second?.errors[0]?.message).toBe('AirflowDagDuplicatedIdException: Ignoring DAG x from /p/dags/a.py - also found in /p/dags/b.py');
  });

  it('the same DAG object reached through one shared module is not a duplicate', () => {
    const results = run([
      message('dags/a.py', [{ id: 'shared', origin: 'common' }]),
      message('dags/b.py', [{ id: 'shared', origin: 'common' }]),
      message('dags/c.py', [{ id: 'shared' }]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'error']);
    // DagBag re-labels the shared object with the last file that exposed it.
    expect(results[2]?.errors[0]?.message).toContain('also found in /p/dags/b.py');
  });

  it('exempts errors listed in dag_integrity_exceptions.txt, member by member for zip archives', () => {
    const exceptions = parseExceptions('# comment\n  dags/broken.py  \ndags/pack.zip/one.py\n');
    const results = run(
      [
        message('dags/broken.py', [], [{ rel: 'dags/broken.py', text: 'ValueError: x', line: 3 }]),
        message(
          'dags/pack.zip',
          [],
          [
            { rel: 'dags/pack.zip/one.py', text: 'KeyError: 1' },
            { rel: 'dags/pack.zip/two.py', text: 'KeyError: 2' },
          ],
        ),
      ],
      exceptions,
    );
    expect(results[0]).toMatchObject({ status: 'ok', exempted: true, errors: [{ path: 'dags/broken.py', line: 3 }] });
    expect(results[1]).toMatchObject({ status: 'error', exempted: false });
  });

  it('lists skipped files after the parsed ones', () => {
    const results = run([message('dags/a.py', [{ id: 'a' }])], new Set(), [
      { path: '/p/dags/helper.py', relPath: 'dags/helper.py', reason: 'no-dag-heuristic' },
    ]);
    expect(results[1]).toMatchObject({ path: 'dags/helper.py', status: 'skipped', skipReason: 'no-dag-heuristic' });
  });

  it('notes output that was cut', () => {
    const flood = { ...message('dags/a.py', [{ id: 'a' }]), output: 'x'.repeat(10), outputDropped: 500 };
    expect(run([flood])[0]?.output).toMatch(/500 more bytes not kept/);
  });

  it('a DAG file that cannot be read fails with its reason, unless exempted', () => {
    const reason = "PermissionError: [Errno 13] Permission denied: '/p/dags/locked.py': the DAG file cannot be read";
    const locked = [{ path: '/p/dags/locked.py', relPath: 'dags/locked.py', message: reason }];
    const [, result] = run([message('dags/a.py', [{ id: 'a' }])], new Set(), [], locked);
    expect(result).toMatchObject({ path: 'dags/locked.py', status: 'error', errors: [{ kind: 'unreadable', message: reason }] });
    expect(run([], new Set(['dags/locked.py']), [], locked)[0]).toMatchObject({ status: 'ok', exempted: true });
  });
});
