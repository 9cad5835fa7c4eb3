/**
 * Turns deploy events into what a person sees on stderr. On a terminal, one spinner shows every phase that is
 * running (push and upload run together) and a line is kept for each finished phase; in logs, plain lines, with
 * byte progress every 25%. The result goes to stdout at the end, not here.
 */
import type { DeployEvent, Phase } from '../deploy/kernel/phases.js';
import type { Output, Spinner } from '../ui/output.js';

const LABELS: Record<Phase, string> = {
  select: 'Finding the Deployment',
  plan: 'Comparing with what the Deployment runs',
  parse: 'Checking your DAGs for errors',
  pytest: 'Running your tests',
  bundle: 'Packing the dags folder',
  build: 'Building image',
  create: 'Creating the deploy',
  push: 'Pushing image to Astronomer registry',
  upload: 'Uploading DAGs',
  finalize: 'Finalizing the deploy',
  wait: 'Waiting for the Deployment to become healthy',
};

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Phases that check the project: finishing one says nothing about what it found (its findings and verdict follow
 * as their own lines), so its end gets no ✔.
 */
const CHECKS: ReadonlySet<Phase> = new Set(['parse', 'pytest']);

/**
 * A bar when the total is known. An image push learns its total layer by layer: once the total has grown, a
 * percentage would jump back each time a layer appears, so the view shows the bytes sent and the total so far.
 */
function progressText(event: Extract<DeployEvent, { type: 'progress' }>, totalGrew: boolean): { text: string; pct?: number } {
  if (!event.bytesTotal) return { text: event.message ?? '' };
  const done = event.bytesDone ?? 0;
  if (totalGrew) return { text: `${formatBytes(done)} of ${formatBytes(event.bytesTotal)} known so far` };
  const pct = Math.min(100, Math.floor((done / event.bytesTotal) * 100));
  const filled = Math.round(pct / 5);
  return { text: `[${'#'.repeat(filled)}${'-'.repeat(20 - filled)}] ${pct}% ${formatBytes(done)}/${formatBytes(event.bytesTotal)}`, pct };
}

export function createDeployView(out: Output): { emit: (event: DeployEvent) => void; close: () => void } {
  const started = new Map<Phase, number>();
  // A phase may name itself (e.g. a custom registry's push); otherwise the default label.
  const labels = new Map<Phase, string>();
  const label = (phase: Phase) => labels.get(phase) ?? LABELS[phase];
  const details = new Map<Phase, string>();
  const lastBucket = new Map<Phase, number>();
  const firstTotal = new Map<Phase, number>();
  const lastTotalShown = new Map<Phase, number>();
  let spinner: Promise<Spinner> | undefined;

  const running = () => [...started.keys()].map((p) => `${label(p)}…${details.get(p) ? ` ${details.get(p)}` : ''}`).join('   ');
  const redraw = () => {
    if (!out.animated) return;
    if (started.size === 0) {
      const s = spinner;
      spinner = undefined;
      void s?.then((x) => x.stop());
      return;
    }
    const text = running();
    if (spinner) void spinner.then((x) => x.update(text));
    else spinner = out.spinner(text);
  };

  const emit = (event: DeployEvent) => {
    switch (event.type) {
      case 'notice':
        out.info(event.message);
        return;
      case 'warning':
        out.warn(event.message);
        return;
      case 'phase': {
        if (event.phase === 'select') return;
        if (event.state === 'start') {
          if (event.label) labels.set(event.phase, event.label);
          started.set(event.phase, Date.now());
          if (!out.animated) out.info(`${label(event.phase)}…`);
          redraw();
          return;
        }
        const seconds = ((Date.now() - (started.get(event.phase) ?? Date.now())) / 1000).toFixed(1);
        started.delete(event.phase);
        details.delete(event.phase);
        if (event.state === 'skipped') out.info(`- ${label(event.phase)}: skipped`);
        else if (event.state !== 'done') out.info(`✖ ${label(event.phase)} failed`);
        else if (CHECKS.has(event.phase)) out.info(`${label(event.phase)}: finished (${seconds}s)`);
        else out.info(`✔ ${label(event.phase)} (${seconds}s)`);
        redraw();
        return;
      }
      case 'progress': {
        if (event.bytesTotal && !firstTotal.has(event.phase)) firstTotal.set(event.phase, event.bytesTotal);
        const grew = event.bytesTotal !== undefined && event.bytesTotal !== firstTotal.get(event.phase);
        const { text, pct } = progressText(event, grew);
        if (out.animated) {
          details.set(event.phase, text);
          redraw();
        } else if (pct !== undefined) {
          const bucket = Math.floor(pct / 25);
          if (lastBucket.get(event.phase) === bucket) return;
          lastBucket.set(event.phase, bucket);
          out.info(`  ${label(event.phase)}: ${text}`);
        } else if (grew) {
          // In logs, a line each time a new layer makes the total grow, not one per chunk.
          if (lastTotalShown.get(event.phase) === event.bytesTotal) return;
          lastTotalShown.set(event.phase, event.bytesTotal!);
          out.info(`  ${label(event.phase)}: ${text}`);
        } else if (text) {
          out.debug(text);
        }
        return;
      }
    }
  };
  return {
    emit,
    close: () => {
      started.clear();
      redraw();
    },
  };
}
