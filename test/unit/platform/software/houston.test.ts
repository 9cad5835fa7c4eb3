import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHoustonClient, houstonErrorMessage } from '../../../../src/platform/software/houston.js';
import { houstonUrl, softwareAppUrl } from '../../../../src/platform/domain.js';

const settings = { protocol: 'https', port: '443', localHouston: '' };

describe('Houston addresses', () => {
  it('builds houston.<domain>:<port>/v1 and app.<domain>, and uses local.houston for localhost and houston', () => {
    expect(houstonUrl('software.example.com', settings)).toBe('https://houston.software.example.com:443/v1');
    expect(houstonUrl('software.example.com', { ...settings, protocol: 'http', port: '8080' })).toBe('http://houston.software.example.com:8080/v1');
    expect(houstonUrl('houston', { ...settings, localHouston: 'http://localhost:8871/v1' })).toBe('http://localhost:8871/v1');
    expect(houstonUrl('localhost', { ...settings, localHouston: 'http://127.0.0.1:9/v1' })).toBe('http://127.0.0.1:9/v1');
    expect(() => houstonUrl('houston', settings)).toThrow('local.houston is empty');
    expect(softwareAppUrl('software.example.com', settings)).toBe('https://app.software.example.com');
  });
});

describe('Houston error messages', () => {
  it('maps permission and schema errors to the messages users know', () => {
    const expired = 'you do not have the appropriate permissions for that: Your token has expired. Please log in again';
    expect(houstonErrorMessage('You do not have the appropriate permissions for that')).toBe(expired);
    expect(houstonErrorMessage('AUTH_TOKEN_REFRESH_FAILED')).toBe(expired);
    expect(houstonErrorMessage('Cannot query field "x" on type "Query".')).toBe(
      'Some fields requested by the CLI are not available in the server schema.: Cannot query field "x" on type "Query".',
    );
    expect(houstonErrorMessage('Workspace not found')).toBe('Workspace not found');
  });
});

describe('Houston client', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  async function serve(handler: (body: string, auth: string | undefined) => { status: number; type?: string; body: string }): Promise<string> {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const answer = handler(body, req.headers.authorization);
        res.writeHead(answer.status, { 'content-type': answer.type ?? 'application/json' });
        res.end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  }

  const schema = z.object({ workspaces: z.array(z.object({ id: z.string() })) });

  it('sends the raw token and the variables, and validates the data', async () => {
    let seen: { body: string; auth?: string } | undefined;
    const url = await serve((body, auth) => {
      seen = { body, auth };
      return { status: 200, body: JSON.stringify({ data: { workspaces: [{ id: 'w1' }] } }) };
    });
    const data = await createHoustonClient({ url, token: 'raw-token' }).request('query Q($a: String) { workspaces { id } }', { a: 'b' }, schema);
    expect(data).toEqual({ workspaces: [{ id: 'w1' }] });
    expect(seen?.auth).toBe('raw-token');
    expect(JSON.parse(seen!.body)).toMatchObject({ variables: { a: 'b' } });
  });

  it("sends through the API clients' node:http fetch, never the global fetch (which compiles undici first)", async () => {
    const url = await serve(() => ({ status: 200, body: JSON.stringify({ data: { workspaces: [] } }) }));
    const original = globalThis.fetch;
    globalThis.fetch = (() => Promise.reject(new Error('the global fetch was used'))) as typeof fetch;
    try {
      expect(await createHoustonClient({ url, token: 't' }).request('{ workspaces { id } }', undefined, schema)).toEqual({ workspaces: [] });
    } finally {
      globalThis.fetch = original;
    }
  });

  it('reports the first GraphQL error, never the variables (which may hold a password)', async () => {
    const url = await serve(() => ({ status: 200, body: JSON.stringify({ data: null, errors: [{ message: 'Invalid username or password' }] }) }));
    const error = (await createHoustonClient({ url })
      .request('mutation M($p: String!) { createToken(password: $p) { token { value } } }', { p: 'secret-password' }, schema)
      .catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('Invalid username or password');
    expect(JSON.stringify(error)).not.toContain('secret-password');
    expect(error.stack ?? '').not.toContain('secret-password');
  });

  it('turns an HTTP error into "API error (<status>): <body>"', async () => {
    const url = await serve(() => ({ status: 502, type: 'text/plain', body: 'bad gateway' }));
    await expect(createHoustonClient({ url }).request('{ workspaces { id } }', undefined, schema)).rejects.toThrow('API error (502): bad gateway');
  });

  it('says when Houston cannot be reached', async () => {
    const url = await serve(() => ({ status: 200, body: '{}' }));
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    await expect(createHoustonClient({ url }).request('{ workspaces { id } }', undefined, schema)).rejects.toThrow('Could not reach Houston');
  });
});
