/**
 * Turns per-file harness results into the verdicts of Astronomer's default DAG integrity test: the cross-file
 * duplicate DAG id check DagBag makes while bagging files in listing order, then the exemptions of
 * `.astro/dag_integrity_exceptions.txt`.
 */
import type { FileMessage, ListingMessage, ParseError, ParseFileResult } from './schema.js';

export interface FileOutcome {
  message: FileMessage;
  cached: boolean;
}

interface BaggedDag {
  fileloc: string;
  origin: string | null;
}

/** `.astro/dag_integrity_exceptions.txt`: one entry per line, stripped, as the integrity test reads it. */
export function parseExceptions(content: string): Set<string> {
  return new Set(content.split('\n').map((line) => line.trim()));
}

/** DagBag's message for a DAG id already bagged from another file (AirflowDagDuplicatedIdException). */
export function duplicateDagMessage(dagId: string, incoming: string, existing: string): string {
  return `AirflowDagDuplicatedIdException: Ignoring DAG ${dagId} from ${incoming} - also found in ${existing}`;
}

/**
 * Walks the files in DagBag's order. A DAG id seen before from another file is an import error of the later file
 * (keyed by that file, as DagBag keys it), unless both files got the very same DAG object from a module they
 * both import: one DagBag process imports that module once, so it bags the same object twice without complaint.
 */
export function mergeResults(listing: ListingMessage, outcomes: ReadonlyMap<string, FileOutcome>, exceptions: ReadonlySet<string>): ParseFileResult[] {
  const bag = new Map<string, BaggedDag>();
  const results: ParseFileResult[] = [];
  for (const file of listing.files) {
    const outcome = outcomes.get(file.path);
    if (outcome === undefined) continue;
    const { message } = outcome;
    const errors: { path: string; relPath: string; error: ParseError }[] = message.errors.map((e) => ({
      path: e.path,
      relPath: e.relPath,
      error: { path: e.relPath, message: e.message, kind: e.kind, ...(e.line !== undefined ? { line: e.line } : {}) },
    }));
    const dagIds: string[] = [];
    for (const dag of message.dags) {
      const previous = bag.get(dag.dagId);
      if (previous !== undefined && previous.origin !== null && previous.origin === dag.origin) {
        previous.fileloc = dag.fileloc;
        dagIds.push(dag.dagId);
        continue;
      }
      if (previous !== undefined && previous.fileloc !== dag.fileloc) {
        errors.push({
          path: dag.fileloc,
          relPath: dag.relFileloc,
          error: { path: dag.relFileloc, message: duplicateDagMessage(dag.dagId, dag.fileloc, previous.fileloc), kind: 'duplicate' },
        });
        continue;
      }
      bag.set(dag.dagId, { fileloc: dag.fileloc, origin: dag.origin });
      dagIds.push(dag.dagId);
    }
    const failing = errors.filter((e) => !exceptions.has(e.relPath));
    results.push({
      path: file.relPath,
      status: failing.length > 0 ? 'error' : 'ok',
      dagIds,
      errors: errors.map((e) => e.error),
      exempted: errors.length > 0 && failing.length === 0,
      warnings: message.warnings,
      ...(message.output !== '' ? { output: message.output + (message.outputDropped > 0 ? `\n… ${message.outputDropped} more bytes not kept` : '') } : {}),
      durationMs: outcome.cached ? 0 : message.durationMs,
      cached: outcome.cached,
    });
  }
  for (const file of listing.unreadable) {
    const exempted = exceptions.has(file.relPath);
    results.push({
      path: file.relPath,
      status: exempted ? 'ok' : 'error',
      dagIds: [],
      errors: [{ path: file.relPath, message: file.message, kind: 'unreadable' }],
      exempted,
      warnings: [],
      durationMs: 0,
      cached: false,
    });
  }
  for (const skipped of listing.skipped) {
    results.push({
      path: skipped.relPath,
      status: 'skipped',
      skipReason: skipped.reason,
      dagIds: [],
      errors: [],
      exempted: false,
      warnings: [],
      durationMs: 0,
      cached: false,
    });
  }
  return results;
}
