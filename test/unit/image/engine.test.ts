import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { createDockerEngine, demuxStream, readJsonMessages, splitRepositoryTag } from '../../../src/image/engine.js';
import { decodeBuildkitStatus, decodeSecretRequestId, encodeSecretResponse, readProtoFields } from '../../../src/image/engine/buildkit.js';

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

function varint(n: number): number[] {
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return bytes;
}

function field(number: number, value: Buffer | number): Buffer {
  if (typeof value === 'number') return Buffer.from([...varint(number * 8), ...varint(value)]);
  return Buffer.concat([Buffer.from([...varint(number * 8 + 2), ...varint(value.length)]), value]);
}

describe('readJsonMessages', () => {
  it('splits messages across chunk boundaries and keeps non-JSON lines as text', async () => {
    const chunks = [
      '{"stream":"Step 1/2 : FROM',
      ' x\\n"}\r\n{"status":"Pushing","id":"a","progressDetail":{"current":1,"total":2}}\n',
      'not json\n',
      '{"error":"boom","errorDetail":{"message":"boom"}}',
    ];
    expect(await collect(readJsonMessages(Readable.from(chunks)))).toEqual([
      { stream: 'Step 1/2 : FROM x\n' },
      { status: 'Pushing', id: 'a', progressDetail: { current: 1, total: 2 } },
      { stream: 'not json\n' },
      { error: 'boom', errorDetail: { message: 'boom' } },
    ]);
  });

  it('passes JSON of an unexpected shape on as text rather than dropping it', async () => {
    expect(await collect(readJsonMessages(Readable.from(['{"stream": 42}\n'])))).toEqual([{ stream: '{"stream": 42}\n' }]);
  });
});

describe('splitRepositoryTag', () => {
  it.each([
    ['ns/airflow:latest', { repository: 'ns/airflow', tag: 'latest' }],
    ['127.0.0.1:5000/ns/airflow:deploy-1', { repository: '127.0.0.1:5000/ns/airflow', tag: 'deploy-1' }],
    ['127.0.0.1:5000/ns/airflow', { repository: '127.0.0.1:5000/ns/airflow', tag: undefined }],
    ['images.astronomer.cloud/abc/airflow:2024-01-01T00-00', { repository: 'images.astronomer.cloud/abc/airflow', tag: '2024-01-01T00-00' }],
  ])('%s', (ref, expected) => {
    expect(splitRepositoryTag(ref)).toEqual(expected);
  });
});

describe('BuildKit protobuf', () => {
  it('reads the secret id of a GetSecretRequest, annotations notwithstanding', () => {
    const annotation = Buffer.concat([field(1, Buffer.from('k')), field(2, Buffer.from('v'))]);
    expect(decodeSecretRequestId(Buffer.concat([field(2, annotation), field(1, Buffer.from('pip_token'))]))).toBe('pip_token');
  });

  it('encodes GetSecretResponse data, long values included', () => {
    const data = Buffer.alloc(300, 1);
    const encoded = encodeSecretResponse(data);
    expect(readProtoFields(encoded)).toEqual([{ field: 1, bytes: data }]);
  });

  it('decodes vertexes and logs of a StatusResponse', () => {
    const timestamp = field(1, 1700000000);
    const vertex = Buffer.concat([
      field(1, Buffer.from('sha256:v1')),
      field(3, Buffer.from('[2/3] RUN make')),
      field(4, 1),
      field(5, timestamp),
      field(7, Buffer.from('exit code: 2')),
    ]);
    const log = Buffer.concat([field(1, Buffer.from('sha256:v1')), field(2, timestamp), field(3, 1), field(4, Buffer.from('compiling\n'))]);
    const status = Buffer.concat([field(1, vertex), field(3, log), field(2, Buffer.from([]))]);
    expect(decodeBuildkitStatus(status.toString('base64'))).toEqual({
      vertexes: [{ digest: 'sha256:v1', name: '[2/3] RUN make', cached: true, started: true, completed: false, error: 'exit code: 2' }],
      logs: [{ vertex: 'sha256:v1', text: 'compiling\n' }],
    });
  });

  it('refuses truncated input', () => {
    expect(() => readProtoFields(Buffer.from([0x0a, 0x05, 0x01]))).toThrow(/truncated/);
  });
});

describe('createDockerEngine over a socket', () => {
  let server: http.Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    server = undefined;
  });

  async function fakeDaemon(
    handler: http.RequestListener,
    onUpgrade?: (req: http.IncomingMessage, socket: import('node:stream').Duplex) => void,
  ): Promise<string> {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-engine-unit-'));
    const socketPath = path.join(dir, 'docker.sock');
    server = http.createServer(handler);
    if (onUpgrade) server.on('upgrade', onUpgrade);
    await new Promise<void>((resolve) => server!.listen(socketPath, resolve));
    return socketPath;
  }

  it('explains how to start Docker when nothing listens on the socket', async () => {
    const engine = createDockerEngine({ socketPath: path.join(os.tmpdir(), `no-docker-${process.pid}.sock`) });
    const error = await engine.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(/^Cannot connect to the Docker engine at unix:\/\/.*no-docker-\d+\.sock: nothing answers \(ENOENT\)\.$/);
    expect((error as UserError).nextStep).toContain('DOCKER_HOST');
  });

  it('pings with /_ping and refuses an HTTP server that names no engine API, or answers it with an error', async () => {
    const asked: string[] = [];
    let answer: 'docker' | 'plain' | 'error' = 'docker';
    const socketPath = await fakeDaemon((req, res) => {
      asked.push(`${req.method} ${req.url}`);
      if (answer === 'error') {
        res.statusCode = 400;
        res.end('Client sent an HTTP request to an HTTPS server.');
        return;
      }
      if (answer === 'docker') {
        res.setHeader('Api-Version', '1.43');
        res.setHeader('Server', 'Docker/24.0.7 (linux)');
      }
      res.end('OK');
    });
    const engine = createDockerEngine({ socketPath });
    expect(await engine.ping()).toEqual({ apiVersion: '1.43', server: 'Docker/24.0.7 (linux)', kind: 'docker' });
    answer = 'plain';
    await expect(engine.ping()).rejects.toThrow(
      `The Docker engine at unix://${socketPath} gave an answer astro does not understand (its /_ping names no API version).`,
    );
    answer = 'error';
    await expect(engine.ping()).rejects.toThrow('Client sent an HTTP request to an HTTPS server.');
    expect(asked).toEqual(['GET /_ping', 'GET /_ping', 'GET /_ping']);
  });

  it('names a TCP engine that does not answer, and one that answers without TLS when TLS was asked for', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await createDockerEngine({ kind: 'tcp', host: '127.0.0.1', port })
      .ping()
      .catch((e: unknown) => e);
    expect((refused as UserError).message).toBe(`Cannot connect to the Docker engine at tcp://127.0.0.1:${port}: nothing answers (ECONNREFUSED).`);

    const plain = http.createServer((_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const plainPort = (plain.address() as { port: number }).port;
    try {
      const tls = await createDockerEngine({ kind: 'tcp', host: '127.0.0.1', port: plainPort, tls: { verify: true } })
        .ping()
        .catch((e: unknown) => e);
      expect((tls as UserError).message).toMatch(
        new RegExp(`^Cannot connect to the Docker engine at tcp://127\\.0\\.0\\.1:${plainPort}: TLS handshake failed: `),
      );
      expect((tls as UserError).nextStep).toContain('DOCKER_CERT_PATH');
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });

  it('reads a container over the engine: create, attach (demultiplexed), start, wait, remove', async () => {
    const calls: string[] = [];
    const frame = (kind: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = kind;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    const socketPath = await fakeDaemon(
      (req, res) => {
        calls.push(`${req.method} ${req.url}`);
        if (req.url === '/containers/create') {
          res.writeHead(201, { 'content-type': 'application/json' });
          res.end('{"Id":"c1"}');
        } else if (req.url?.endsWith('/wait')) {
          res.end('{"StatusCode":3}');
        } else {
          res.writeHead(204);
          res.end();
        }
      },
      (req, socket) => {
        calls.push(`UPGRADE ${req.url} ${req.headers.upgrade}`);
        socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
        const both = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')]);
        // Split mid-frame: the reader must put frames back together.
        socket.write(both.subarray(0, 11));
        setTimeout(() => socket.end(both.subarray(11)), 10);
      },
    );
    const engine = createDockerEngine({ socketPath });
    const container = await engine.createContainer({ Image: 'img', Cmd: ['true'], Env: [] });
    const stream = await container.attach();
    let out = '';
    let err = '';
    demuxStream(
      stream,
      (t) => (out += t),
      (t) => (err += t),
    );
    const ended = new Promise((resolve) => stream.once('end', resolve));
    await container.start();
    expect(await container.wait()).toEqual({ StatusCode: 3 });
    await ended;
    await container.remove({ force: true });
    expect(out).toBe('out 1\nout 2\n');
    expect(err).toBe('err 1\n');
    expect(calls).toEqual([
      'POST /containers/create',
      'UPGRADE /containers/c1/attach?stream=1&stdout=1&stderr=1 tcp',
      'POST /containers/c1/start',
      'POST /containers/c1/wait',
      'DELETE /containers/c1?force=true',
    ]);
  });

  it('sends the push credentials as base64url JSON in X-Registry-Auth and pushes exactly one tag', async () => {
    let seen: { url?: string; auth?: string } = {};
    const socketPath = await fakeDaemon((req, res) => {
      seen = { url: req.url, auth: req.headers['x-registry-auth'] as string };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"aux":{"Digest":"sha256:1"}}\r\n');
    });
    const engine = createDockerEngine({ socketPath });
    const auth = { username: 'cli', password: 'Bearer a/b+c?', serveraddress: 'r.example:5000' };
    expect(await collect(engine.push('r.example:5000/ns/airflow:t-1', auth))).toEqual([{ aux: { Digest: 'sha256:1' } }]);
    expect(seen.url).toBe('/images/r.example:5000/ns/airflow/push?tag=t-1');
    expect(JSON.parse(Buffer.from(seen.auth!, 'base64url').toString())).toEqual(auth);
  });

  it('sends a registry token alone to Docker, and the credentials alone to Podman', async () => {
    for (const podman of [false, true]) {
      let auth = '';
      const socketPath = await fakeDaemon((req, res) => {
        if (req.url?.endsWith('/_ping')) {
          res.writeHead(200, { 'api-version': '1.41', ...(podman ? { 'libpod-api-version': '4.3.1', server: 'Libpod/4.3.1 (linux)' } : {}) });
          res.end('OK');
          return;
        }
        auth = req.headers['x-registry-auth'] as string;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"aux":{"Digest":"sha256:1"}}\r\n');
      });
      const engine = createDockerEngine({ socketPath });
      await engine.ping();
      const credentials = { username: 'cli', password: 'Bearer api-token', serveraddress: 'r.example:5000' };
      await collect(engine.push('r.example:5000/ns/airflow:t-1', { ...credentials, registrytoken: 'scoped' }));
      expect(JSON.parse(Buffer.from(auth, 'base64url').toString())).toEqual(
        podman ? credentials : { serveraddress: 'r.example:5000', registrytoken: 'scoped' },
      );
      if (!podman) {
        await new Promise<void>((resolve) => server!.close(() => resolve()));
        await fs.rm(dir!, { recursive: true, force: true });
      }
    }
  });

  it('chooses BuildKit on a Docker engine that has it, classic on Podman and older engines, and sends version=2 without a session', async () => {
    let pingHeaders: Record<string, string> = {};
    const urls: string[] = [];
    const socketPath = await fakeDaemon((req, res) => {
      if (req.url?.endsWith('/_ping')) return void res.writeHead(200, pingHeaders).end('OK');
      urls.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(200).end('{"stream":"ok\\n"}\n'));
    });
    const chosen = async (headers: Record<string, string>, wanted?: 'buildkit' | 'classic') => {
      pingHeaders = headers;
      return createDockerEngine({ socketPath }).chooseBuilder(wanted);
    };
    expect(await chosen({ 'api-version': '1.41' })).toBe('buildkit');
    expect(await chosen({ 'api-version': '1.39' })).toBe('buildkit');
    expect(await chosen({ 'api-version': '1.38' })).toBe('classic');
    expect(await chosen({ 'api-version': '1.41' }, 'classic')).toBe('classic');
    expect(await chosen({ 'api-version': '1.38' }, 'buildkit')).toBe('buildkit');
    const podman = { 'api-version': '1.41', 'libpod-api-version': '4.3.1', server: 'Libpod/4.3.1 (linux)' };
    expect(await chosen(podman)).toBe('classic');
    expect(await chosen(podman, 'buildkit')).toBe('classic');

    const engine = createDockerEngine({ socketPath });
    const request = { tag: 'a/b:1', dockerfile: 'Dockerfile', labels: { k: 'v' } };
    await collect(engine.build({ ...request, context: Readable.from([Buffer.from('tar')]), builder: 'buildkit' }));
    await collect(engine.build({ ...request, context: Readable.from([Buffer.from('tar')]), builder: 'classic' }));
    const [buildkit, classic] = urls.map((u) => new URL(u, 'http://x').searchParams);
    expect(buildkit!.get('version')).toBe('2');
    expect(buildkit!.get('session')).toBeNull();
    expect(JSON.parse(buildkit!.get('labels')!)).toEqual({ k: 'v' });
    expect(classic!.get('version')).toBeNull();
  });

  it("shares this machine's loopback only as a Docker engine on a local socket, on this kernel, neither Docker Desktop nor rootless", async () => {
    let pingHeaders: Record<string, string> = {};
    let version: Record<string, unknown> = {};
    const socketPath = await fakeDaemon((req, res) => {
      if (req.url?.endsWith('/_ping')) return void res.writeHead(200, pingHeaders).end('OK');
      if (req.url?.endsWith('/version')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(version));
      res.writeHead(404).end('{}');
    });
    const shares = async (headers: Record<string, string>, answer: Record<string, unknown>) => {
      pingHeaders = headers;
      version = answer;
      return createDockerEngine({ socketPath }).sharesLoopback();
    };
    const docker = { 'api-version': '1.41', server: 'Docker/20.10.24 (linux)' };
    const engine = { Platform: { Name: '' }, Components: [{ Name: 'Engine' }, { Name: 'containerd' }], KernelVersion: os.release() };
    expect(await shares(docker, engine)).toBe(process.platform === 'linux');
    expect(await shares(docker, { ...engine, KernelVersion: '5.15.49-linuxkit' })).toBe(false);
    expect(await shares(docker, { ...engine, Platform: { Name: 'Docker Desktop 4.25.0 (126437)' } })).toBe(false);
    expect(await shares(docker, { ...engine, Components: [{ Name: 'Engine' }, { Name: 'rootlesskit' }] })).toBe(false);
    expect(await shares(docker, { ...engine, KernelVersion: undefined })).toBe(false);
    expect(await shares({ 'api-version': '1.41', 'libpod-api-version': '4.3.1', server: 'Libpod/4.3.1 (linux)' }, engine)).toBe(false);
  });

  it('passes the build options as query parameters and reports engine errors with their message', async () => {
    let url = '';
    const socketPath = await fakeDaemon((req, res) => {
      url = req.url ?? '';
      req.resume();
      req.on('end', () => {
        if (url.startsWith('/build')) {
          res.writeHead(200);
          res.end('{"stream":"ok\\n"}\n');
        } else {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"message":"No such image: nope:1"}');
        }
      });
    });
    const engine = createDockerEngine({ socketPath });
    const messages = await collect(
      engine.build({ context: Readable.from([Buffer.from('tar')]), tag: 'a/b:1', dockerfile: 'Dockerfile', platform: 'linux/amd64', labels: { k: 'v' } }),
    );
    expect(messages).toEqual([{ stream: 'ok\n' }]);
    const query = new URL(url, 'http://x').searchParams;
    expect(query.get('t')).toBe('a/b:1');
    expect(query.get('platform')).toBe('linux/amd64');
    expect(JSON.parse(query.get('labels')!)).toEqual({ k: 'v' });
    expect(query.get('version')).toBeNull();

    expect(await engine.inspect('nope:1')).toBeUndefined();
    await expect(engine.tag('nope:1', 'x:1')).rejects.toMatchObject({ statusCode: 404, message: 'No such image: nope:1' });
    await expect(engine.remove('nope:1')).resolves.toBeUndefined();
  });
});
