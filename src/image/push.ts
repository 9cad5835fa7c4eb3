/**
 * Pushes the deploy image to the Deployment's registry: tag the local image with the remote name, push it with
 * credentials derived from the session, report per-layer byte progress, capture the digest the registry assigned,
 * and remove the remote name locally afterwards (on failure too) so deploys do not pile up tags.
 *
 * Transient failures (408, 429, 5xx, dropped connections, a registry that restarts) are retried with exponential
 * backoff and jitter; the engine already retries single layer uploads on its own. Authentication failures are not
 * retried: they become the actionable 403 message.
 */
import { AstroError, UserError } from '../errors.js';
import { retry, throwIfAborted, type RetryPolicy } from '../util/retry.js';
import { splitRepositoryTag, withoutRegistryToken, type EngineMessage, type ImageEngine, type RegistryAuth } from './engine.js';

export type PushProgressEvent =
  | { type: 'push-start'; remoteRef: string; attempt: number }
  /** Progress of one layer; `current`/`total` are bytes while it uploads. */
  | { type: 'push-layer'; id: string; status: string; current?: number; total?: number }
  | { type: 'push-retry'; attempt: number; delayMs: number; reason: string }
  | { type: 'push-done'; remoteRef: string; digest: string; size?: number }
  /** The remote name could not be removed locally after the push; harmless, but worth a line. */
  | { type: 'push-cleanup-failed'; remoteRef: string; reason: string }
  /** The registry refused the push's registry token: pushed again with the credentials. */
  | { type: 'push-token-refused'; remoteRef: string }
  /** The push through the relay (registry-relay.ts) failed or went unconfirmed: the engine pushes directly now. */
  | { type: 'push-relay-failed'; remoteRef: string; reason: string };

/** Pushes: four attempts, from a second up to fifteen (the engine already retries single layers itself). */
export const PUSH_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 1000, maxDelayMs: 15_000 };

export interface PushImageOptions {
  /** The image as built locally, e.g. `<namespace>/airflow:latest`. */
  localRef: string;
  /** `<imageRepository>:<imageTag>` from the create-deploy answer. */
  remoteRef: string;
  auth: RegistryAuth;
  /**
   * The registry's origin, when the first attempt should go through a relay on this machine's loopback
   * (image/registry-relay.ts, which says when the caller may ask for it); only with a registry token in `auth`.
   * Failed or unconfirmed, the push goes on directly at once.
   */
  relayTo?: string;
  signal?: AbortSignal;
  onProgress?: (event: PushProgressEvent) => void;
  retry?: Partial<RetryPolicy> & { random?: () => number };
}

export interface PushedImage {
  remoteRef: string;
  /** `sha256:…` of the manifest the registry stored. */
  digest: string;
  size?: number;
  attempts: number;
  /**
   * The remote name's removal from the local engine, started once the push succeeded and left to finish while the
   * caller goes on (finalizing the deploy): await it before the command ends. It never rejects; a failure is reported
   * as push-cleanup-failed. A push that fails has removed the name before it throws.
   */
  untagged: Promise<void>;
}

export const PUSH_AUTH_FAILED_MESSAGE = 'failed to push image due to authentication error (403 Forbidden).';
export const PUSH_AUTH_HELP_URL = 'https://support.astronomer.io/hc/en-us/articles/41427905156243-403-errors-on-image-push';

export type PushFailureKind = 'auth' | 'transient' | 'fatal';

/**
 * Sorts an engine push error. The engine only reports text (`unauthorized: …`, `received unexpected HTTP status:
 * 503 Service Unavailable`, `dial tcp …: connect: connection refused`), so this has to read it.
 */
export function classifyPushError(message: string): PushFailureKind {
  const text = message.toLowerCase();
  if (/\b(401|403)\b/.test(text) || /unauthori[sz]ed|forbidden|authentication required|denied|no basic auth credentials/.test(text)) return 'auth';
  if (/\b(408|429|500|502|503|504)\b/.test(text) || /\b5\d\d [a-z]/.test(text)) return 'transient';
  if (
    /toomanyrequests|too many requests|request timeout|timeout|timed out|connection refused|connection reset|broken pipe|\beof\b|unexpected eof|blob upload unknown|blob upload invalid|server closed|no route to host|service unavailable|bad gateway|internal server error|temporarily/.test(
      text,
    )
  ) {
    return 'transient';
  }
  return 'fatal';
}

function authError(auth: RegistryAuth, engineMessage: string): UserError {
  return new UserError(PUSH_AUTH_FAILED_MESSAGE, {
    nextStep: [
      `The registry ${auth.serveraddress} refused the credentials (${engineMessage}). Common causes:`,
      `  - Docker has old credentials for ${auth.serveraddress} cached: run \`docker logout ${auth.serveraddress}\`, then deploy again.`,
      '  - Docker Desktop stores images with the containerd snapshotter ("Use containerd for pulling and storing images"),',
      '    which is known to break pushes to Astronomer registries: turn it off in Docker Desktop settings and retry.',
      '  - Your session or API token expired or cannot deploy to this Deployment: run `astro login` or check ASTRO_API_TOKEN.',
      `More help: ${PUSH_AUTH_HELP_URL}`,
    ].join('\n'),
  });
}

type AttemptResult = { ok: true; digest: string; size?: number } | { ok: false; message: string };

async function pushOnce(engine: ImageEngine, options: PushImageOptions, auth: RegistryAuth): Promise<AttemptResult> {
  const emit = options.onProgress ?? (() => undefined);
  let digest: string | undefined;
  let size: number | undefined;
  let failure: string | undefined;
  try {
    for await (const message of engine.push(options.remoteRef, auth, options.signal)) {
      const aux = message.aux as { Digest?: unknown; Size?: unknown } | undefined;
      if (aux && typeof aux.Digest === 'string') {
        digest = aux.Digest;
        if (typeof aux.Size === 'number') size = aux.Size;
      } else if (digest === undefined && typeof message.status === 'string') {
        // Podman's compatible API sends no aux message, only the line Docker prints too: `TAG: digest: sha256:… size: N`.
        const confirmed = /: digest: (sha256:[0-9a-f]{64})(?: size: (\d+))?/.exec(message.status);
        if (confirmed) {
          digest = confirmed[1];
          if (confirmed[2] !== undefined) size = Number(confirmed[2]);
        }
      }
      if (message.error !== undefined || message.errorDetail !== undefined) {
        failure = message.errorDetail?.message ?? message.error ?? 'unknown error';
      } else if (message.id !== undefined && message.status !== undefined) {
        emit(layerEvent(message));
      }
    }
  } catch (error) {
    throwIfAborted(options.signal, 'The image push was interrupted.');
    if (error instanceof AstroError) throw error;
    // The connection to the engine broke mid-push: the engine may be fine, so treat it as any other failure.
    return { ok: false, message: (error as Error).message };
  }
  if (failure !== undefined) return { ok: false, message: failure };
  if (digest === undefined) return { ok: false, message: 'the push ended without the registry confirming a digest (EOF)' };
  return { ok: true, digest, ...(size !== undefined ? { size } : {}) };
}

function layerEvent(message: EngineMessage): PushProgressEvent {
  const current = message.progressDetail?.current;
  const total = message.progressDetail?.total;
  return {
    type: 'push-layer',
    id: message.id as string,
    status: message.status as string,
    ...(current !== undefined ? { current } : {}),
    ...(total !== undefined ? { total } : {}),
  };
}

/**
 * Tags `localRef` as `remoteRef`, pushes it and returns the digest the registry stored. The remote name is removed
 * from the local engine afterwards, whatever happened: before a failure is thrown, beside what follows a success
 * (`untagged`).
 */
export async function pushImage(engine: ImageEngine, options: PushImageOptions): Promise<PushedImage> {
  const emit = options.onProgress ?? (() => undefined);
  const { signal } = options;
  throwIfAborted(signal, 'The image push was interrupted.');

  /** The names this push gave the local image, removed again whatever happens. */
  const named: string[] = [];
  const nameAs = async (ref: string): Promise<void> => {
    if (named.includes(ref)) return;
    try {
      await engine.tag(options.localRef, ref);
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) {
        throw new UserError(`The image '${options.localRef}' is not in the local Docker engine, so it cannot be pushed.`, { cause: error });
      }
      throw error;
    }
    if (ref !== options.localRef) named.push(ref);
  };
  const untag = async (): Promise<void> => {
    for (const ref of named) {
      try {
        await engine.remove(ref);
      } catch (error) {
        emit({ type: 'push-cleanup-failed', remoteRef: ref, reason: (error as Error).message });
      }
    }
  };
  const policy: RetryPolicy = { ...PUSH_RETRY, ...options.retry };
  let auth = options.auth;
  let attempts = 0;
  try {
    const relayTo = auth.registrytoken !== undefined ? options.relayTo : undefined;
    const result = await retry(
      async () => {
        attempts++;
        emit({ type: 'push-start', remoteRef: options.remoteRef, attempt: attempts });
        if (relayTo !== undefined && attempts === 1) {
          const relayed = await pushThroughRelay(engine, options, auth, relayTo, nameAs);
          if (relayed.ok) return relayed;
          emit({ type: 'push-relay-failed', remoteRef: options.remoteRef, reason: relayed.message });
        }
        await nameAs(options.remoteRef);
        let outcome = await pushOnce(engine, options, auth);
        // A registry token the registry refused (another scope, expired, an engine that does not pass it on): the
        // engine asks the registry's token realm with the credentials itself, as without one.
        if (!outcome.ok && classifyPushError(outcome.message) === 'auth' && auth.registrytoken !== undefined) {
          auth = withoutRegistryToken(auth);
          emit({ type: 'push-token-refused', remoteRef: options.remoteRef });
          outcome = await pushOnce(engine, options, auth);
        }
        // Astro's registry takes the token with or without its `Bearer ` prefix; some registries take only one form.
        if (!outcome.ok && classifyPushError(outcome.message) === 'auth' && auth.password.startsWith('Bearer ')) {
          auth = { ...auth, password: auth.password.slice('Bearer '.length) };
          outcome = await pushOnce(engine, options, auth);
        }
        if (!outcome.ok) throw new PushFailure(outcome.message);
        return outcome;
      },
      {
        policy,
        signal,
        random: options.retry?.random,
        interruptedMessage: 'The image push was interrupted.',
        classify: (error) =>
          error instanceof PushFailure && classifyPushError(error.message) === 'transient' ? { retry: true, reason: error.message } : { retry: false },
        onRetry: ({ attempt, delayMs, reason }) => emit({ type: 'push-retry', attempt, delayMs, reason }),
      },
    ).catch((error: unknown) => {
      if (!(error instanceof PushFailure)) throw error;
      const kind = classifyPushError(error.message);
      if (kind === 'auth') throw authError(options.auth, error.message);
      if (kind === 'fatal') throw new UserError(`failed to push image ${options.remoteRef}: ${error.message}`);
      throw new UserError(`failed to push image ${options.remoteRef} after ${attempts} attempts: ${error.message}`, {
        nextStep: 'The registry or the network kept failing. Check your connection and deploy again.',
      });
    });
    emit({ type: 'push-done', remoteRef: options.remoteRef, digest: result.digest, ...(result.size !== undefined ? { size: result.size } : {}) });
    return {
      remoteRef: options.remoteRef,
      digest: result.digest,
      ...(result.size !== undefined ? { size: result.size } : {}),
      attempts,
      untagged: untag(),
    };
  } catch (error) {
    await untag();
    throw error;
  }
}

/**
 * One attempt through a relay to the registry at `origin` (registry-relay.ts): the engine pushes the image as
 * `127.0.0.1:<port>/<name>:<tag>`, and the attempt counts only when the registry's answer to the manifest, seen by
 * the relay, confirms the digest the engine reports.
 */
async function pushThroughRelay(
  engine: ImageEngine,
  options: PushImageOptions,
  auth: RegistryAuth,
  origin: string,
  nameAs: (ref: string) => Promise<void>,
): Promise<AttemptResult> {
  const { openRegistryRelay } = await import('./registry-relay.js');
  const relay = await openRegistryRelay(origin);
  // The relay cannot reach the registry: the engine's push through it is stopped, not left to retry.
  const stop = new AbortController();
  let unreachable: Error | undefined;
  relay.onFailure = (error) => {
    unreachable = error;
    stop.abort(error);
  };
  const interrupted = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', interrupted, { once: true });
  if (options.signal?.aborted) interrupted();
  try {
    const { repository, tag = 'latest' } = splitRepositoryTag(options.remoteRef);
    const relayedRef = `${relay.host}/${repository.slice(repository.indexOf('/') + 1)}:${tag}`;
    await nameAs(relayedRef);
    const relayed = { ...options, remoteRef: relayedRef, signal: stop.signal };
    const outcome = await pushOnce(engine, relayed, { ...auth, serveraddress: relay.host }).catch((error: unknown) => {
      if (unreachable === undefined || options.signal?.aborted) throw error;
      return { ok: false as const, message: `the relay could not reach the registry (${unreachable.message})` };
    });
    if (!outcome.ok) return outcome;
    const confirmed = relay.manifestDigest(tag);
    if (confirmed !== outcome.digest) {
      return { ok: false, message: `the registry's answer to the manifest was not seen through the relay (${relay.requests} requests relayed)` };
    }
    return outcome;
  } finally {
    options.signal?.removeEventListener('abort', interrupted);
    await relay.close();
  }
}

/** One push attempt's failure, as the engine worded it. */
class PushFailure extends Error {}
