/**
 * Turns deploy events into what a person sees: a spinner per phase on a terminal, plain lines in CI logs,
 * byte progress for push and upload. Everything here goes to stderr; the result goes to stdout at the end.
 */
import type { DeployEvent, Phase } from '../deploy/deploy.js';
import type { Output, Spinner } from '../ui/output.js';

const LABELS: Record<Phase, string> = {
  select: 'Finding the Deployment',
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

export function createDeployView(out: Output): { emit: (event: DeployEvent) => void; close: () => void } {
  const spinners = new Map<Phase, Promise<Spinner>>();
  const started = new Map<Phase, number>();
  // A phase may name itself (e.g. a custom registry's push); otherwise the default label.
  const labels = new Map<Phase, string>();
  const label = (phase: Phase) => labels.get(phase) ?? LABELS[phase];
  const lastPrinted = new Map<Phase, number>();

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
          started.set(event.phase, Date.now());
          if (event.detail && /^[A-Z]/.test(event.detail)) labels.set(event.phase, event.detail);
          spinners.set(event.phase, out.spinner(`${label(event.phase)}…`));
          return;
        }
        const spinner = spinners.get(event.phase);
        spinners.delete(event.phase);
        const seconds = ((Date.now() - (started.get(event.phase) ?? Date.now())) / 1000).toFixed(1);
        void spinner?.then((s) => (event.state === 'done' ? s.succeed(`${label(event.phase)} (${seconds}s)`) : s.fail(`${label(event.phase)} failed`)));
        return;
      }
      case 'progress': {
        const spinner = spinners.get(event.phase);
        let text = event.message ?? '';
        if (event.bytesTotal) {
          const pct = Math.min(100, Math.floor(((event.bytesDone ?? 0) / event.bytesTotal) * 100));
          const width = 20;
          const filled = Math.round((pct / 100) * width);
          text = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}% ${formatBytes(event.bytesDone ?? 0)}/${formatBytes(event.bytesTotal)}`;
          // In logs, a line per 25% is enough.
          if (out.streams.stderr.isTTY !== true) {
            const bucket = Math.floor(pct / 25);
            if (lastPrinted.get(event.phase) === bucket) return;
            lastPrinted.set(event.phase, bucket);
            out.info(`  ${label(event.phase)}: ${text}`);
            return;
          }
        }
        if (spinner) void spinner.then((s) => s.update(`${label(event.phase)}… ${text}`));
        else if (text) out.debug(text);
        return;
      }
    }
  };
  return {
    emit,
    close: () => {
      for (const s of spinners.values()) void s.then((x) => x.stop());
      spinners.clear();
    },
  };
}
