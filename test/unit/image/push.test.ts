import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { InterruptedError, UserError } from '../../../src/errors.js';
import { classifyPushError, pushImage, PUSH_AUTH_FAILED_MESSAGE, PUSH_AUTH_HELP_URL, type PushProgressEvent } from '../../../src/image/push.js';
import { splitRepositoryTag } from '../../../src/image/engine.js';
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

describe('pushImage through a relay (registry-relay.ts)', () => {
  const withToken = { ...AUTH, registrytoken: 'scoped-token' };

  /** A registry that takes manifests under any tag with DIGEST, and records what reached it. */
  async function registry() {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      req.resume();
      req.on('end', () => res.writeHead(req.method === 'PUT' ? 201 : 404, { 'docker-content-digest': DIGEST, 'content-length': '0' }).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // The relay's kept-alive and warm connections are closed with it.
    const close = () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    return { origin, seen, close };
  }

  /** Runs `check` beside a registry stand-in, closed afterwards whatever happened. */
  async function withRegistry(check: (upstream: Awaited<ReturnType<typeof registry>>) => Promise<void>): Promise<void> {
    const upstream = await registry();
    try {
      await check(upstream);
    } finally {
      await upstream.close();
    }
  }

  /** What Docker's engine sends to the registry it was told to push to: the manifest under the tag. */
  const engineSends = (engine: FakeEngine) => {
    engine.onPush = async (ref, auth) => {
      const { repository, tag } = splitRepositoryTag(ref);
      const [host, ...name] = repository.split('/');
      if (!host!.startsWith('127.0.0.1:')) return;
      await fetch(`http://${host}/v2/${name.join('/')}/manifests/${tag}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${auth.registrytoken}` },
        body: '{}',
      }).then((r) => r.arrayBuffer());
    };
  };

  /** A push of LOCAL as REMOTE with the registry token, first through a relay to `origin`; its events and result. */
  async function relayedPush(engine: FakeEngine, origin: string) {
    const events: PushProgressEvent[] = [];
    const pushed = await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: withToken, relayTo: origin, onProgress: (e) => events.push(e) });
    await pushed.untagged;
    return { pushed, events };
  }

  it('pushes as 127.0.0.1:<port>/<name>:<tag>, trusts the digest the registry confirmed through the relay, and removes that name', async () =>
    withRegistry(async (upstream) => {
      const engine = engineWithImage();
      engine.pushScript = () => success;
      engineSends(engine);
      const { pushed, events } = await relayedPush(engine, upstream.origin);
      expect(pushed).toMatchObject({ remoteRef: REMOTE, digest: DIGEST, attempts: 1 });
      const relayed = engine.calls.find((c) => c.startsWith('push '))!.slice('push '.length);
      expect(relayed).toMatch(/^127\.0\.0\.1:\d+\/ns\/airflow:deploy-2024$/);
      expect(engine.calls).toEqual([`tag ${LOCAL} ${relayed}`, `push ${relayed}`, `remove ${relayed}`, `removed ${relayed}`]);
      // The engine got the token and the relay's host; the registry got the engine's request as it was.
      expect(engine.pushAuths).toEqual([{ ...withToken, serveraddress: relayed.split('/')[0] }]);
      expect(upstream.seen).toEqual(['PUT /v2/ns/airflow/manifests/deploy-2024 Bearer scoped-token']);
      expect(events.some((e) => e.type === 'push-relay-failed')).toBe(false);
    }));

  it('pushes directly at once when the relay did not see the registry take the manifest, or the engine failed through it', async () =>
    withRegistry(async (upstream) => {
      // The engine reports a digest, but nothing reached the relay (an engine that cannot reach this machine's loopback
      // and found another registry there would look like this).
      const unseen = engineWithImage();
      unseen.pushScript = () => success;
      const { pushed, events } = await relayedPush(unseen, upstream.origin);
      const relayed = unseen.calls[0]!.split(' ')[2]!;
      expect(unseen.calls).toEqual([
        `tag ${LOCAL} ${relayed}`,
        `push ${relayed}`,
        `tag ${LOCAL} ${REMOTE}`,
        `push ${REMOTE}`,
        `remove ${relayed}`,
        `removed ${relayed}`,
        `remove ${REMOTE}`,
        `removed ${REMOTE}`,
      ]);
      expect(pushed).toMatchObject({ digest: DIGEST, attempts: 1 });
      expect(events).toContainEqual({
        type: 'push-relay-failed',
        remoteRef: REMOTE,
        reason: expect.stringContaining('not seen through the relay (0 requests relayed)'),
      });
      expect(unseen.pushAuths.map((a) => a.serveraddress)).toEqual([relayed.split('/')[0], AUTH.serveraddress]);

      // The engine's push through the relay failed: no waiting, no retry counted, the direct push follows.
      const failed = engineWithImage();
      failed.pushScript = (attempt) => (attempt === 1 ? [{ error: 'Get "http://127.0.0.1:1/v2/": dial tcp: connect: connection refused' }] : success);
      const direct = await pushImage(failed, { localRef: LOCAL, remoteRef: REMOTE, auth: withToken, relayTo: upstream.origin, retry: { baseDelayMs: 60_000 } });
      expect(direct).toMatchObject({ digest: DIGEST, attempts: 1 });
      expect(failed.calls.filter((c) => c.startsWith('push ')).map((c) => c.includes('127.0.0.1:'))).toEqual([true, false]);
    }));

  it('is not used without a registry token: the engine never gets the credentials for a relay', async () =>
    withRegistry(async (upstream) => {
      const engine = engineWithImage();
      engine.pushScript = () => success;
      engineSends(engine);
      await pushImage(engine, { localRef: LOCAL, remoteRef: REMOTE, auth: AUTH, relayTo: upstream.origin });
      expect(engine.calls.slice(0, 2)).toEqual([`tag ${LOCAL} ${REMOTE}`, `push ${REMOTE}`]);
      expect(upstream.seen).toEqual([]);
    }));
});
