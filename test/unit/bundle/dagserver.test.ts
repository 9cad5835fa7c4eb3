import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanErrorBody, uploadToDagServer, type DagServerEvent } from '../../../src/bundle/dagserver.js';
import { InterruptedError, UserError } from '../../../src/errors.js';

interface Received {
  authorization?: string;
  contentType?: string;
  file?: Buffer;
  filename?: string;
  description?: string;
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

function readForm(req: IncomingMessage): Promise<Received> {
  return new Promise((resolve, reject) => {
    const out: Received = { authorization: req.headers.authorization, contentType: req.headers['content-type'] };
    const parser = busboy({ headers: req.headers });
    parser.on('file', (_name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        out.file = Buffer.concat(chunks);
        out.filename = info.filename;
      });
    });
    parser.on('field', (name, value) => {
      if (name === 'description') out.description = value;
    });
    parser.on('close', () => resolve(out));
    parser.on('error', reject);
    req.pipe(parser);
  });
}

/** A DAG server whose answers are scripted per attempt; it records what each attempt carried. */
async function serve(answers: ({ status: number; body?: string } | 'hang-up')[]): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void readForm(req).then((form) => {
      received.push(form);
      const answer = answers[Math.min(received.length - 1, answers.length - 1)]!;
      if (answer === 'hang-up') {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body ?? '{}');
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/release-1/dags/upload`, received };
}

const data = Buffer.from('not really a tarball, the server only records it');

describe('uploadToDagServer', () => {
  it('sends the bundle as multipart file + description with the raw token, and succeeds on 200', async () => {
    const { url, received } = await serve([{ status: 200, body: '{"message":"upload successful"}' }]);
    const result = await uploadToDagServer({ url, token: 'raw-houston-token', data, description: 'Deployed via <astro deploy --dags>' });
    expect(result).toEqual({ attempts: 1, response: { message: 'upload successful' } });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      authorization: 'raw-houston-token',
      description: 'Deployed via <astro deploy --dags>',
      filename: 'dags.tar.gz',
    });
    expect(received[0]!.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(received[0]!.file!.equals(data)).toBe(true);
  });

  it('retries 5xx answers and dropped connections with a doubling delay, until a 200', async () => {
    const { url, received } = await serve([{ status: 503 }, 'hang-up', { status: 500 }, { status: 200 }]);
    const events: DagServerEvent[] = [];
    const result = await uploadToDagServer({ url, token: 't', data, description: 'd', baseDelayMs: 5, onProgress: (e) => events.push(e) });
    expect(result.attempts).toBe(4);
    expect(received).toHaveLength(4);
    expect(events.filter((e) => e.type === 'retry').map((e) => (e as { delayMs: number }).delayMs)).toEqual([5, 10, 20]);
    expect(events.filter((e) => e.type === 'attempt').map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2, 3, 4]);
  });

  it('does not retry a 4xx, and reports its status and cleaned body', async () => {
    const body = JSON.stringify({ message: 'invalid DAG bundle', exceptions: ['trace'], args: [1], path: '/x', status: 400 });
    const { url, received } = await serve([{ status: 400, body }, { status: 200 }]);
    const error = await uploadToDagServer({ url, token: 't', data, description: 'd', baseDelayMs: 1 }).catch((e: unknown) => e);
    expect(received).toHaveLength(1);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe('file upload failed. Status code: 400 and Message: {"message":"invalid DAG bundle"}');
  });

  it('counts only 200 as success: a 201 is retried like a server error', async () => {
    const { url, received } = await serve([{ status: 201 }, { status: 200 }]);
    const result = await uploadToDagServer({ url, token: 't', data, description: 'd', baseDelayMs: 1 });
    expect(result.attempts).toBe(2);
    expect(received).toHaveLength(2);
  });

  it('gives up after the last attempt with the last status', async () => {
    const { url, received } = await serve([{ status: 502, body: 'bad gateway' }]);
    const error = await uploadToDagServer({ url, token: 't', data, description: 'd', baseDelayMs: 1, maxAttempts: 3 }).catch((e: unknown) => e);
    expect(received).toHaveLength(3);
    expect((error as Error).message).toBe('file upload failed. Status code: 502 and Message: bad gateway');
  });

  it('makes 8 attempts by default and reports an unreachable server without a status', async () => {
    // Nothing listens on this port once the server is closed.
    const { url } = await serve([{ status: 200 }]);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const events: DagServerEvent[] = [];
    const error = await uploadToDagServer({ url, token: 't', data, description: 'd', baseDelayMs: 1, onProgress: (e) => events.push(e) }).catch(
      (e: unknown) => e,
    );
    expect(events.filter((e) => e.type === 'attempt')).toHaveLength(8);
    expect((error as Error).message).toMatch(/^file upload failed: .*ECONNREFUSED/);
  });

  it('stops waiting between attempts when the deploy is interrupted', async () => {
    const { url, received } = await serve([{ status: 500 }]);
    const controller = new AbortController();
    const pending = uploadToDagServer({
      url,
      token: 't',
      data,
      description: 'd',
      baseDelayMs: 60_000,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'retry') controller.abort('SIGINT');
      },
    });
    await expect(pending).rejects.toBeInstanceOf(InterruptedError);
    expect(received).toHaveLength(1);
  });
});

describe('cleanErrorBody', () => {
  it('drops the noisy keys from JSON objects and leaves other bodies alone', () => {
    expect(cleanErrorBody('{"error":"x","status":500,"path":"/p"}')).toBe('{"error":"x"}');
    expect(cleanErrorBody('[1,2]')).toBe('[1,2]');
    expect(cleanErrorBody('  plain text \n')).toBe('plain text');
  });
});
