/**
 * The fault suite's own figures. Every case records how many faults it injected and how the deploy ended:
 *
 * - survived: the deploy completed despite the faults, and the platform runs exactly what was deployed;
 * - refused:  the CLI stopped with a non-zero exit and a clear message, and nothing was half-deployed
 *             (the Deployment still runs its previous code, the project is unchanged);
 * - lost:     anything else: a refusal that exits 0, an unclear message, a success the platform does not reflect,
 *             a finalized deploy that should not be, a changed project file, a temp file left behind.
 *
 * Clear means, for every refusal: the message says what happened, it is not reported as a bug, nothing on the
 * terminal is a raw control sequence (escapes in file names, DAG errors or platform text are shown, not acted on),
 * and with --json stdout is exactly one JSON document carrying the exit code. A lost case whose output said
 * something untrue (a claim about the platform, a forged line) is also counted as misleading.
 *
 * A case is judged by the checks of its test; a test that throws before its verdict counts as lost. Each test file
 * writes its cases to `.state/faults/cases/<file>.json`; the totals over all files go to `.state/faults/figures.json`
 * and are printed after every file, so the last file of a run prints the figures of the whole suite.
 * `tsx test/faults/figures.ts` prints them again with the table of cases.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Outcome = 'survived' | 'refused' | 'lost';

export interface CaseRecord {
  id: string;
  group: string;
  /** Faults injected in this case (proxy faults counted by the proxy; a signal, a bad input, a race count one). */
  faults: number;
  expected: Exclude<Outcome, 'lost'>;
  outcome: Outcome;
  /** Why it was judged so; for refusals, the message the user saw. */
  detail: string;
  /** Lost because the output told the user something untrue (not merely something unclear). */
  misleading?: boolean;
  durationMs: number;
}

export interface FigureTotals {
  generatedAt: string;
  files: string[];
  cases: number;
  faultsInjected: number;
  /** Faults in cases that ended in each outcome. */
  survived: number;
  refusedClearly: number;
  lost: number;
  /** Cases whose output was untrue: a subset of the lost ones. */
  misleading: number;
  casesByOutcome: Record<Outcome, number>;
  /** Cases per group (network, interrupts, bad input, hostile input, ...) and how they ended. */
  groups: Record<string, Record<Outcome, number>>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const figuresDir = path.resolve(here, '..', '..', '.state', 'faults');
const casesDir = path.join(figuresDir, 'cases');
export const figuresFile = path.join(figuresDir, 'figures.json');

export class FigureBook {
  readonly cases: CaseRecord[] = [];

  constructor(readonly file: string) {}

  record(c: CaseRecord): void {
    this.cases.push(c);
  }

  /** Writes this file's cases, recomputes the totals over every file's cases, and returns the printable summary. */
  flush(): { totals: FigureTotals; line: string } {
    fs.mkdirSync(casesDir, { recursive: true });
    fs.writeFileSync(
      path.join(casesDir, `${this.file}.json`),
      JSON.stringify({ file: this.file, writtenAt: new Date().toISOString(), cases: this.cases }, null, 2),
    );
    const totals = computeTotals();
    fs.writeFileSync(figuresFile, JSON.stringify(totals, null, 2));
    return { totals, line: summaryLine(totals) };
  }
}

export function loadAllCases(): { file: string; cases: CaseRecord[] }[] {
  if (!fs.existsSync(casesDir)) return [];
  return fs
    .readdirSync(casesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(casesDir, f), 'utf8')) as { file: string; cases: CaseRecord[] });
}

export function computeTotals(): FigureTotals {
  const all = loadAllCases();
  const cases = all.flatMap((f) => f.cases);
  const faultsIn = (o: Outcome) => cases.filter((c) => c.outcome === o).reduce((n, c) => n + c.faults, 0);
  const count = (o: Outcome) => cases.filter((c) => c.outcome === o).length;
  const groups: Record<string, Record<Outcome, number>> = {};
  for (const c of cases) {
    const g = (groups[c.group] ??= { survived: 0, refused: 0, lost: 0 });
    g[c.outcome] += 1;
  }
  return {
    generatedAt: new Date().toISOString(),
    files: all.map((f) => f.file),
    cases: cases.length,
    faultsInjected: cases.reduce((n, c) => n + c.faults, 0),
    survived: faultsIn('survived'),
    refusedClearly: faultsIn('refused'),
    lost: faultsIn('lost'),
    misleading: cases.filter((c) => c.outcome === 'lost' && c.misleading === true).length,
    casesByOutcome: { survived: count('survived'), refused: count('refused'), lost: count('lost') },
    groups,
  };
}

export function summaryLine(t: FigureTotals): string {
  return (
    `faults injected ${t.faultsInjected}, survived ${t.survived}, refused clearly ${t.refusedClearly}, lost ${t.lost}, misleading ${t.misleading} ` +
    `(${t.cases} cases: ${t.casesByOutcome.survived} survived, ${t.casesByOutcome.refused} refused clearly, ${t.casesByOutcome.lost} lost; ` +
    `files: ${t.files.join(', ')})`
  );
}

export function printTable(): string {
  const lines: string[] = [];
  for (const { file, cases } of loadAllCases()) {
    lines.push(`${file}:`);
    for (const c of cases) {
      const mark = c.outcome === 'lost' ? (c.misleading ? 'MISLEAD' : 'LOST') : c.outcome === 'survived' ? 'survived' : 'refused';
      lines.push(
        `  ${mark.padEnd(8)} ${String(c.faults).padStart(3)} fault(s)  [${c.group}] ${c.id}${c.outcome === 'refused' || c.outcome === 'lost' ? ` — ${c.detail.split('\n')[0]}` : ''}`,
      );
    }
  }
  const totals = computeTotals();
  lines.push('', 'cases per group (survived / refused clearly / lost):');
  for (const [group, n] of Object.entries(totals.groups).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`  ${group.padEnd(28)} ${n.survived} / ${n.refused} / ${n.lost}`);
  }
  lines.push('', summaryLine(totals));
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(printTable());
}
