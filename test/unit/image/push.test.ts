import { describe, expect, it } from 'vitest';
import { InterruptedError, UserError } from '../../../src/errors.js';
import { classifyPushError, pushImage, PUSH_AUTH_FAILED_MESSAGE, PUSH_AUTH_HELP_URL, type PushProgressEvent } from '../../../src/image/push.js';
import { FakeEngine, image } from './fake-engine.js';

const LOCAL = 'ns/airflow:latest';
const REMOTE = 'images.example.test/ns/airflow:deploy-2024';
const AUTH = { username: 'cli', password: 'Bearer tok', serveraddress: 'images.example.test' };
const DIGEST = `sha256:${'c'.repeat(64)}`;
const noJitter = { baseDelayMs: 1, maxDelayMs: 4, random: () => 0 };

function engineWithImage(): FakeEngine {
  const engine = new FakeEngine();
  engine.images.set(LOCAL, image(LOCAL));
  return engine;
}

const success = [
  { status: 'The push refers to repository [images.example.test/ns/airflow]' },
  { status: 'Preparing', id: 'l1', progressDetail: {} },
  { status: 'Pushing', id: 'l1', progressDetail: { current: 512, total: 2048 } },
  { status: 'Pushing', id: 'l1', progressDetail: { current: 2048, total: 2048 } },
  { status: 'Pushed', id: 'l1', progressDetail: {} },
  { status: 'deploy-2024: digest: ' + DIGEST + ' size: 527' },
  { progressDetail: {}, aux: { Tag: 'deploy-2024', Digest: DIGEST, Size: 527 } },
];

describe('classifyPushError', () => {
  it.each([
    ['unauthorized: authentication required', 'auth'],
    ['denied: requested access to the resource is denied', 'auth'],
    ['received unexpected HTTP status: 403 Forbidden', 'auth'],
    ['unauthorized: invalid credentials', 'auth'],
    ['received unexpected HTTP status: 500 Internal Server Error', 'transient'],
    ['received unexpected HTTP status: 503 Service Unavailable', 'transient'],
    ['error parsing HTTP 408 response body: unexpected end of JSON input: ""', 'transient'],
    ['toomanyrequests: retry later', 'transient'],
    ['Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused', 'transient'],
    ['write tcp 127.0.0.1:1->127.0.0.1:2: write: connection reset by peer', 'transient'],
    ['Patch "http://r/v2/x/blobs/uploads/1": EOF', 'transient'],
    ['blob upload unknown: blob upload unknown to registry', 'transient'],
    ['net/http: TLS handshake timeout', 'transient'],
    ['manifest invalid: manifest invalid', 'fatal'],
    ['name unknown: repository name not known to registry', 'fatal'],
  ])('%s -> %s', (message, kind) => {
    expect(classifyPushError(message)).toBe(kind);
  });
});

describe('pushImage', () => {
  it('tags, pushes, reports per-layer bytes, returns the digest and removes the remote name', async () => {
    const engine = engineWithImage();
    engine.pushScript = () => success;
    let release!: () => void;
    engine.removeGate = new Promise<void>((resolve) => (release = resolve));
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, onProgress: (e) => events.push(e) });
    expect(pushed).toEqual({ remoteRef: REMOTE, digest: DIGEST, size: 527, attempts: 1, untagged: expect.any(Promise) });
    // The push is done while its remote name is still being removed; `untagged` says when that is over.
    expect(engine.calls).toEqual([`tag ${LOCAL} ${REMOTE}`, `push ${REMOTE}`, `remove ${REMOTE}`]);
    let untagged = false;
    void pushed.untagged.then(() => (untagged = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(untagged).toBe(false);
    release();
    await pushed.untagged;
    expect(engine.calls.at(-1)).toBe(`removed ${REMOTE}`);
    expect(events).toContainEqual({ type: 'push-layer', id: 'l1', status: 'Pushing', current: 512, total: 2048 });
    expect(events.at(-1)).toEqual({ type: 'push-done', remoteRef: REMOTE, digest: DIGEST, size: 527 });
    expect(engine.images.has(LOCAL)).toBe(true);
  });

  it("takes the digest from the status line when the engine sends no aux message (Podman's compatible API)", async () => {
    const engine = engineWithImage();
    engine.pushScript = () => [{ status: 'Getting image source signatures' }, { status: `deploy-2024: digest: ${DIGEST} size: 1234` }];
    expect(await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH })).toMatchObject({
      remoteRef: REMOTE,
      digest: DIGEST,
      size: 1234,
      attempts: 1,
    });
  });

  it('retries transient failures with backoff and succeeds', async () => {
    const engine = engineWithImage();
    engine.pushScript = (attempt) =>
      attempt === 1
        ? [{ error: 'received unexpected HTTP status: 502 Bad Gateway', errorDetail: { message: 'received unexpected HTTP status: 502 Bad Gateway' } }]
        : attempt === 2
          ? new Error('socket hang up: ECONNRESET connection reset')
          : success;
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, retry: noJitter, onProgress: (e) => events.push(e) });
    expect(pushed.attempts).toBe(3);
    expect(events.filter((e) => e.type === 'push-retry')).toEqual([
      { type: 'push-retry', attempt: 2, delayMs: 1, reason: 'received unexpected HTTP status: 502 Bad Gateway' },
      { type: 'push-retry', attempt: 3, delayMs: 1, reason: 'socket hang up: ECONNRESET connection reset' },
    ]);
  });

  it('treats a stream that ends without a digest as a failed attempt', async () => {
    const engine = engineWithImage();
    engine.pushScript = (attempt) => (attempt === 1 ? success.slice(0, 3) : success);
    const pushed = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, retry: noJitter });
    expect(pushed.attempts).toBe(2);
  });

  it('gives up after the configured attempts with the last error, and still removes the remote name', async () => {
    const engine = engineWithImage();
    engine.pushScript = () => [{ error: 'received unexpected HTTP status: 503 Service Unavailable' }];
    const error = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, retry: { ...noJitter, attempts: 3 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(`failed to push image ${REMOTE} after 3 attempts: received unexpected HTTP status: 503 Service Unavailable`);
    expect(engine.calls.filter((c) => c.startsWith('push'))).toHaveLength(3);
    expect(engine.calls.at(-1)).toBe(`removed ${REMOTE}`);
  });

  it('does not retry authentication failures beyond the token without its Bearer prefix, and explains the 403', async () => {
    const engine = engineWithImage();
    engine.pushScript = () => [{ error: 'unauthorized: authentication required', errorDetail: { message: 'unauthorized: authentication required' } }];
    const error = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, retry: noJitter }).catch((e: unknown) => e);
    expect((error as Error).message).toBe(PUSH_AUTH_FAILED_MESSAGE);
    const nextStep = (error as UserError).nextStep ?? '';
    expect(nextStep).toContain('docker logout images.example.test');
    expect(nextStep).toContain('containerd');
    expect(nextStep).toContain(PUSH_AUTH_HELP_URL);
    expect(engine.pushAuths.map((a) => a.password)).toEqual(['Bearer tok', 'tok']);
    expect(engine.calls.at(-1)).toBe(`removed ${REMOTE}`);
  });

  it('accepts the token without its Bearer prefix when only that form works', async () => {
    const engine = engineWithImage();
    engine.pushScript = (_attempt, auth) => (auth.password === 'tok' ? success : [{ error: 'denied: requested access to the resource is denied' }]);
    const pushed = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH });
    expect(pushed.digest).toBe(DIGEST);
  });

  it('pushes with a registry token when given one, and with the credentials alone once the registry refuses it', async () => {
    const withToken = { ...AUTH, registrytoken: 'scoped-token' };
    const accepted = engineWithImage();
    accepted.pushScript = () => success;
    expect((await pushImage(accepted, { localRef: LOCAL, remoteRef: REMOTE, auth: withToken })).digest).toBe(DIGEST);
    expect(accepted.pushAuths).toEqual([withToken]);

    const refused = engineWithImage();
    refused.pushScript = (_attempt, auth) => (auth.registrytoken ? [{ error: 'unauthorized: authentication required' }] : success);
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(refused, { localRef: LOCAL, remoteRef: REMOTE, auth: withToken, onProgress: (e) => events.push(e) });
    expect(pushed).toMatchObject({ digest: DIGEST, attempts: 1 });
    expect(refused.pushAuths).toEqual([withToken, AUTH]);
    expect(events).toContainEqual({ type: 'push-token-refused', remoteRef: REMOTE });

    // Refused with the credentials too: the usual 403, after both forms of the password.
    const denied = engineWithImage();
    denied.pushScript = () => [{ error: 'denied: requested access to the resource is denied' }];
    const error = await pushImage(denied, { localRef: LOCAL, remoteRef: REMOTE, auth: withToken, retry: noJitter }).catch((e: unknown) => e);
    expect((error as Error).message).toBe(PUSH_AUTH_FAILED_MESSAGE);
    expect(denied.pushAuths.map((a) => [a.password, a.registrytoken])).toEqual([
      ['Bearer tok', 'scoped-token'],
      ['Bearer tok', undefined],
      ['tok', undefined],
    ]);
  });

  it('fails at once on errors retrying cannot fix', async () => {
    const engine = engineWithImage();
    engine.pushScript = () => [{ error: 'manifest invalid: manifest invalid' }];
    await expect(pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, retry: noJitter })).rejects.toThrow(
      `failed to push image ${REMOTE}: manifest invalid: manifest invalid`,
    );
    expect(engine.calls.filter((c) => c.startsWith('push'))).toHaveLength(1);
  });

  it('says so when the local image does not exist', async () => {
    const engine = new FakeEngine();
    await expect(pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH })).rejects.toThrow(
      `The image '${LOCAL}' is not in the local Docker engine`,
    );
    expect(engine.calls.some((c) => c.startsWith('push'))).toBe(false);
  });

  it('stops waiting between retries when the signal is aborted', async () => {
    const engine = engineWithImage();
    engine.pushScript = () => [{ error: 'received unexpected HTTP status: 503 Service Unavailable' }];
    const controller = new AbortController();
    const pending = pushImage(engine, {
      localRef: LOCAL,
      remoteRef: REMOTE,
      auth: AUTH,
      signal: controller.signal,
      retry: { baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0 },
      onProgress: (e) => {
        if (e.type === 'push-retry') controller.abort(new InterruptedError('SIGTERM'));
      },
    });
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect((error as InterruptedError).signal).toBe('SIGTERM');
    expect(engine.calls.at(-1)).toBe(`removed ${REMOTE}`);
  });

  it('reports a failed cleanup without failing the push', async () => {
    const engine = engineWithImage();
    engine.pushScript = () => success;
    engine.removeError = new Error('conflict: unable to remove');
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, onProgress: (e) => events.push(e) });
    expect(pushed.digest).toBe(DIGEST);
    await pushed.untagged;
    expect(events.at(-1)).toEqual({ type: 'push-cleanup-failed', remoteRef: REMOTE, reason: 'conflict: unable to remove' });
  });
});
