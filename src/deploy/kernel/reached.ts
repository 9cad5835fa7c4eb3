/**
 * What reached the platform so far, in one model for Astro and Software, and the one place that words it: the
 * message of an interrupted deploy and the advice after a half-way failure both come from here.
 *
 * A deploy ships up to two parts (the image, the DAGs). Some arrive "live" (Software's own registry and DAG server
 * roll them out themselves); the others wait for an activation: Astro's finalize, or Software's image update for a
 * custom registry. Astro also creates a deploy record before anything is sent.
 */
import { InterruptedError, UserError } from '../../errors.js';
import { ApiError } from '../../platform/http.js';
import { signalName } from '../../util/retry.js';
import type { Phase, PhaseRunner } from './phases.js';

export interface Part {
  ships: boolean;
  sent: boolean;
  /** Where it went (the image reference), when that is worth saying. */
  as?: string;
  /** The platform starts using it on arrival: no activation needed. */
  liveOnArrival: boolean;
}

export type ActivationState = 'not-sent' | 'unknown' | 'done';

export interface Reached {
  /** Astro's deploy record (CreateDeploy). */
  deployId?: string;
  image: Part;
  dags: Part;
  activation: { name: 'finalize' | 'image update'; state: ActivationState };
}

export function newReached(activation: Reached['activation']['name']): Reached {
  const part = (): Part => ({ ships: false, sent: false, liveOnArrival: false });
  return { image: part(), dags: part(), activation: { name: activation, state: 'not-sent' } };
}

function somethingReached(r: Reached): boolean {
  return r.deployId !== undefined || r.image.sent || r.dags.sent || r.activation.state !== 'not-sent';
}

function imageSentence(r: Reached): string {
  const { image, activation } = r;
  if (!image.sent) return 'The image was not pushed.';
  if (image.liveOnArrival) return `The image ${image.as ?? ''} was pushed and the Deployment is rolling it out.`.replace('  ', ' ');
  if (activation.name === 'image update') {
    if (activation.state === 'done') return `The Deployment was told to run ${image.as ?? 'the new image'}.`;
    if (activation.state === 'unknown') return `The image was pushed as ${image.as}; whether the Deployment was told to run it is unknown.`;
    return `The image was pushed as ${image.as}, but the Deployment was not told to run it.`;
  }
  return 'The image was pushed.';
}

function dagsSentence(r: Reached): string {
  const { dags, activation } = r;
  if (!dags.sent) return 'The DAG bundle was not uploaded.';
  if (dags.liveOnArrival || activation.state !== 'not-sent') return 'The DAG bundle was uploaded.';
  return 'The DAG bundle was uploaded but not activated.';
}

/** What reached the platform, and what to do about it. */
export function describeReached(r: Reached): string {
  if (!somethingReached(r)) return 'Nothing reached the platform: the Deployment still runs its previous code.';
  if (r.activation.name === 'finalize' && r.activation.state === 'done') return 'The deploy was finalized; the Deployment is updating.';
  const parts: string[] = [];
  if (r.deployId) {
    parts.push(
      r.activation.state === 'unknown'
        ? `Deploy ${r.deployId} was created and its finalize sent, but whether the platform received it is unknown: check the Deployment before deploying again.`
        : `Deploy ${r.deployId} was created but not finalized, so the Deployment still runs its previous code.`,
    );
  } else if (r.activation.state === 'unknown' && !r.image.ships) {
    parts.push(`The ${r.activation.name} was sent, but whether the platform received it is unknown: check the Deployment before deploying again.`);
  }
  if (r.image.ships) parts.push(imageSentence(r));
  if (r.dags.ships) parts.push(dagsSentence(r));
  if (r.activation.state === 'not-sent') parts.push('Run astro deploy again.');
  return parts.join(' ');
}

/** The InterruptedError of a deploy: the signal, every phase in flight, and what reached the platform. */
export function interruptedDeploy(signal: AbortSignal, runner: PhaseRunner, reached: Reached, cause: unknown): InterruptedError {
  const name = signalName(signal);
  const phases: Phase[] = runner.interruptedDuring();
  const what =
    reached.activation.name === 'finalize' && reached.activation.state === 'done'
      ? 'The deploy was finalized before the interruption; the Deployment is updating.'
      : phases.includes('create') && !reached.deployId
        ? // The create request may have arrived with its answer still on the way: at most an unused deploy exists.
          'The deploy was being created; nothing was pushed, uploaded or finalized: the Deployment still runs its previous code.'
        : describeReached(reached);
  return new InterruptedError(name, `Deploy interrupted by ${name} during ${phases.join(' and ')}. ${what}`, { cause });
}

/**
 * Every deploy failure after something reached the platform says what did, after the failure's own advice; a
 * server or network failure before anything reached it says that nothing was left half-done.
 */
export function explainFailure(error: unknown, reached: Reached, service: string): unknown {
  if (somethingReached(reached) && error instanceof UserError) {
    const what = describeReached(reached);
    if (error.nextStep?.includes(what)) return error;
    return new UserError(error.message, { cause: error, nextStep: error.nextStep ? `${error.nextStep}\n${what}` : what });
  }
  if (!somethingReached(reached) && error instanceof ApiError && !error.nextStep && (error.status === undefined || error.status >= 500)) {
    return new UserError(error.status === undefined ? error.message : `${error.message} (HTTP ${error.status} from ${service})`, {
      cause: error,
      nextStep: `${describeReached(reached)} Run astro deploy again.`,
    });
  }
  return error;
}
