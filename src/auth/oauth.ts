/**
 * The OAuth endpoints behind an Astro domain: auth-config, token (code, refresh, client credentials), userinfo.
 */
import * as z from 'zod';
import { UserError } from '../errors.js';
import { ApiError, type FetchAnswer, type FetchPort } from '../platform/http.js';
import { authConfigSchema, type AuthConfig } from '../platform/astro/schemas.js';
import { CHECKED_ONCE } from '../util/checked-once.js';

const tokenAnswerSchema = z.looseObject({
  access_token: z.string().optional(),
  refresh_token: z.string().optional(),
  expires_in: z.number().optional(),
  id_token: z.string().optional(),
  error: z.string().optional(),
  error_description: z.string().optional(),
});
export type TokenAnswer = { accessToken: string; refreshToken?: string; expiresIn: number };

export async function fetchAuthConfig(url: string, fetchPort: FetchPort = fetch, signal?: AbortSignal): Promise<AuthConfig> {
  let response: FetchAnswer;
  try {
    response = await fetchPort(url, { headers: { 'content-type': 'application/json', 'x-astro-client-identifier': 'cli' }, signal });
  } catch (error) {
    throw new ApiError(`Could not reach ${new URL(url).origin} to start the login.`, undefined, {
      cause: error,
      nextStep: 'Check the domain you passed to astro login and your network connection.',
    });
  }
  const text = await response.text();
  if (response.status !== 200) {
    throw new ApiError(
      response.status >= 400 ? `API error (${response.status}): ${text}` : 'something went wrong! Try again or contact Astronomer Support',
      response.status,
    );
  }
  return parseJson(text, authConfigSchema, 'auth config');
}

function parseJson<T>(text: string, schema: z.ZodType<T>, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(`cannot decode response: the ${what} answer is not JSON`, { cause: error });
  }
  const parsed = schema.safeParse(json, CHECKED_ONCE);
  if (!parsed.success) throw new UserError(`cannot decode response: unexpected ${what} answer (${parsed.error.issues[0]?.message})`);
  return parsed.data;
}

export async function requestToken(config: AuthConfig, form: Record<string, string>, fetchPort: FetchPort = fetch, signal?: AbortSignal): Promise<TokenAnswer> {
  let response: FetchAnswer;
  try {
    response = await fetchPort(`${config.domainUrl}oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
      signal,
    });
  } catch (error) {
    throw new ApiError(`cannot retrieve token: ${(error as Error).message}`, undefined, { cause: error });
  }
  const text = await response.text();
  let answer: z.infer<typeof tokenAnswerSchema> | undefined;
  try {
    answer = tokenAnswerSchema.parse(JSON.parse(text));
  } catch {
    answer = undefined;
  }
  if (answer?.error) throw new UserError(answer.error_description || answer.error);
  if (response.status >= 400) throw new ApiError(`cannot retrieve token: API error (${response.status})`, response.status);
  if (!answer?.access_token) throw new UserError('cannot decode response: the token answer has no access_token');
  return { accessToken: answer.access_token, refreshToken: answer.refresh_token, expiresIn: answer.expires_in ?? 3600 };
}

export async function fetchUserEmail(config: AuthConfig, accessToken: string, fetchPort: FetchPort = fetch, signal?: AbortSignal): Promise<string> {
  let response: FetchAnswer;
  try {
    response = await fetchPort(`${config.domainUrl}userinfo`, { headers: { authorization: `Bearer ${accessToken}` }, signal });
  } catch (error) {
    throw new UserError(`cannot retrieve userinfo: ${(error as Error).message}`, { cause: error });
  }
  if (response.status !== 200) throw new UserError(`cannot retrieve userinfo: API error (${response.status})`);
  const info = parseJson(await response.text(), z.looseObject({ email: z.string().optional() }), 'userinfo');
  if (!info.email) throw new UserError('cannot retrieve email');
  return info.email;
}
