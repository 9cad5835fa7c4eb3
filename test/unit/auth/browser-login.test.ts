import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { authorizeUrl, LoginDeniedError, LoginTimeoutError, startCallbackServer } from '../../../src/auth/browser-login.js';
import { UserError } from '../../../src/errors.js';

const authConfig = { clientId: 'client-1', audience: 'astronomer-ee', domainUrl: 'https://auth.example.com/' };

describe('authorizeUrl', () => {
  it('asks for a code with PKCE S256, the scopes of Astronomer, the redirect and the state', () => {
    const url = new URL(authorizeUrl({ authConfig, redirectUri: 'http://localhost:12345/callback', codeChallenge: 'chal', state: 'st' }));
    expect(url.origin + url.pathname).toBe('https://auth.example.com/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      prompt: 'login',
      audience: 'astronomer-ee',
      client_id: 'client-1',
      redirect_uri: 'http://localhost:12345/callback',
      scope: 'openid profile email offline_access',
      response_type: 'code',
      response_mode: 'query',
      code_challenge: 'chal',
      code_challenge_method: 'S256',
      state: 'st',
    });
    expect(url.search).toContain('scope=openid%20profile%20email%20offline_access');
  });
});

async function callback(port: number, query: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/callback?${query}`, { redirect: 'manual' });
}

describe('callback server', () => {
  it('listens on 127.0.0.1, gives the localhost redirect URI, and resolves with the code', async () => {
    const server = await startCallbackServer({ port: 0, state: 's1' });
    expect(server.redirectUri).toBe(`http://localhost:${server.port}/callback`);
    const waiting = server.waitForCode(5000);
    const response = await callback(server.port, 'code=abc&state=s1');
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('You can close this tab');
    await expect(waiting).resolves.toBe('abc');
  });

  it('refuses a callback with the wrong or no state, and keeps waiting for the right one', async () => {
    const server = await startCallbackServer({ port: 0, state: 'right' });
    const waiting = server.waitForCode(5000);
    expect((await callback(server.port, 'code=forged&state=wrong')).status).toBe(400);
    expect((await callback(server.port, 'code=forged')).status).toBe(400);
    expect((await callback(server.port, 'code=real&state=right')).status).toBe(200);
    await expect(waiting).resolves.toBe('real');
  });

  it('answers 404 elsewhere and 400 for a callback without code or error', async () => {
    const server = await startCallbackServer({ port: 0, state: 's' });
    const waiting = server.waitForCode(5000);
    expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    expect((await callback(server.port, 'state=s')).status).toBe(400);
    await callback(server.port, 'code=c&state=s');
    await expect(waiting).resolves.toBe('c');
  });

  it('turns an error callback into "Could not authorize your device" with the error and its description', async () => {
    const server = await startCallbackServer({ port: 0, state: 's' });
    const waiting = server.waitForCode(5000).catch((e: unknown) => e);
    await callback(server.port, 'error=access_denied&error_description=User%20said%20no&state=s');
    const error = await waiting;
    expect(error).toBeInstanceOf(LoginDeniedError);
    expect((error as Error).message).toBe('Could not authorize your device: access_denied: User said no');
  });

  it('times out with "the operation has timed out" and stops listening', async () => {
    const server = await startCallbackServer({ port: 0, state: 's' });
    const error = await server.waitForCode(150).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LoginTimeoutError);
    expect((error as Error).message).toBe('the operation has timed out');
    await expect(fetch(`http://127.0.0.1:${server.port}/callback?code=late&state=s`)).rejects.toThrow();
  });

  it('keeps a callback that arrives before anyone waits', async () => {
    const server = await startCallbackServer({ port: 0, state: 's' });
    await callback(server.port, 'code=early&state=s');
    await expect(server.waitForCode(1000)).resolves.toBe('early');
  });

  it('stops on the cancellation signal', async () => {
    const server = await startCallbackServer({ port: 0, state: 's' });
    const controller = new AbortController();
    const waiting = server.waitForCode(5000, controller.signal);
    controller.abort(new Error('interrupted'));
    await expect(waiting).rejects.toThrow('interrupted');
  });

  it('says clearly when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const error = await startCallbackServer({ port, state: 's' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).message).toContain(`Port ${port} on 127.0.0.1 is already in use`);
      expect((error as UserError).nextStep).toContain('login.callback_port');
    } finally {
      blocker.close();
    }
  });
});
