/**
 * Docker token authentication for the local registry (distribution's token spec): the registry sends clients to
 * `/registry/token`, which checks Basic credentials and answers a registry JWT granting push/pull only on the
 * repositories of Deployments the credential may deploy to. Also receives the registry's push notifications,
 * which is how Software Deployments learn that a new image tag arrived (`deployInfo.current`).
 */
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { registryRepositorySuffix, registryService, type Platform } from '../platform.js';
import { HttpError, sendJson, type RequestContext, type Router } from './http.js';
import type { RegistryAccess } from '../tokens.js';

const scopePattern = /^repository:([a-z0-9]+(?:[._/-][a-z0-9]+)*):([a-z*,]+)$/;

function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  const match = header && /^basic\s+(\S+)$/i.exec(header.trim());
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function registryError(status: number, message: string): HttpError {
  return new HttpError(status, message, {
    code: status === 401 ? 'UNAUTHORIZED' : 'DENIED',
    headers: status === 401 ? { 'www-authenticate': 'Basic realm="astro-local-registry"' } : {},
  });
}

const notificationSchema = z.object({
  events: z.array(
    z
      .object({
        action: z.string(),
        target: z.object({ mediaType: z.string().optional(), digest: z.string(), repository: z.string(), tag: z.string().optional() }).loose(),
        actor: z.object({ name: z.string().optional() }).loose().optional(),
      })
      .loose(),
  ),
});

export function registerRegistryRoutes(router: Router, platform: Platform, notificationSecret: string): void {
  /** Repositories the credential may use, or an HttpError when the credential itself is refused. */
  const allowedRepositories = async (username: string, password: string): Promise<{ subject: string; repositories: string[] }> => {
    if (username === 'cli') {
      // Astro's CLI logs in with the context token verbatim ("Bearer <jwt>"); `docker login` strips the prefix.
      const token = password.replace(/^bearer\s+/i, '').trim();
      try {
        const principal = await platform.verifyPlatformToken(token);
        return { subject: platform.describePrincipal(principal), repositories: platform.astroRepositories(principal) };
      } catch (error) {
        if (error instanceof HttpError) throw registryError(401, `registry login refused: ${error.message}`);
        throw error;
      }
    }
    if (username === 'user') {
      const principal = await platform.authenticateHouston(password);
      if (!principal) throw registryError(401, 'registry login refused: the password is not a valid Houston token');
      return { subject: platform.describePrincipal(principal), repositories: platform.softwareRepositories(principal) };
    }
    throw registryError(
      401,
      `registry login refused: unknown user ${JSON.stringify(username)} (use "cli" with an Astro token, or "user" with a Houston token)`,
    );
  };

  /**
   * No credentials. Astronomer's CLI on the `localhost` Software domain skips registry login and pushes with an empty
   * username, so Docker asks for a token anonymously; the registry of that setup takes such pushes. Only Software
   * repositories qualify, and only when the platform is served as localhost: Astro repositories still need a login.
   */
  const anonymousRepositories = (scopes: string[]): { subject: string; repositories: string[] } => {
    const refuse = () => registryError(401, 'registry login required: send Basic credentials');
    if (platform.options.publicHost !== 'localhost') throw refuse();
    const software = platform.seed.software.deployments.map((d) => `${d.releaseName}/${registryRepositorySuffix}`);
    const byo = platform.byoRepository();
    if (byo) software.push(byo);
    const wanted = scopes.map((scope) => scopePattern.exec(scope)?.[1]).filter((name): name is string => name !== undefined);
    if (wanted.length === 0 || !wanted.some((name) => software.includes(name))) throw refuse();
    return { subject: 'anonymous', repositories: software };
  };

  const issue = async (ctx: RequestContext, credentials: { username: string; password: string } | undefined, scopes: string[], service: string) => {
    if (service && service !== registryService) throw registryError(401, `unknown service ${service}; this endpoint serves ${registryService}`);
    const { subject, repositories } = credentials ? await allowedRepositories(credentials.username, credentials.password) : anonymousRepositories(scopes);
    const access: RegistryAccess[] = [];
    for (const scope of scopes) {
      const match = scopePattern.exec(scope);
      if (!match) {
        if (scope.startsWith('registry:catalog')) continue;
        throw registryError(400, `malformed scope ${JSON.stringify(scope)}`);
      }
      const [, name, actions] = match as unknown as [string, string, string];
      if (!repositories.includes(name)) continue;
      const granted = actions.split(',').filter((a) => a === 'push' || a === 'pull');
      if (granted.length > 0) access.push({ type: 'repository', name, actions: granted });
    }
    const ttl = platform.options.registryTokenTtlSeconds;
    const token = await platform.tokens.registryToken(subject, registryService, access, ttl);
    sendJson(ctx.res, 200, { token, access_token: token, expires_in: ttl, issued_at: platform.isoNow() });
  };

  router.on('GET', '/registry/token', async (ctx) => {
    const q = ctx.url.searchParams;
    await issue(
      ctx,
      basicCredentials(ctx.req.headers.authorization),
      q
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean),
      q.get('service') ?? '',
    );
  });

  // OAuth2 variant of the token spec (docker uses it once it holds a refresh token).
  router.on('POST', '/registry/token', async (ctx) => {
    const form = await ctx.form();
    if (form.grant_type !== 'password') throw registryError(400, `grant_type ${form.grant_type ?? '(none)'} is not supported; use password`);
    const credentials = form.username !== undefined && form.password !== undefined ? { username: form.username, password: form.password } : undefined;
    await issue(ctx, credentials, (form.scope ?? '').split(' ').filter(Boolean), form.service ?? '');
  });

  router.on('POST', '/registry/events', async (ctx) => {
    const expected = Buffer.from(`Bearer ${notificationSecret}`);
    const given = Buffer.from(String(ctx.req.headers.authorization ?? ''));
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw new HttpError(401, 'registry notifications need the shared secret');
    const parsed = notificationSchema.safeParse(await ctx.json());
    if (!parsed.success) throw new HttpError(400, 'not a registry notification envelope');
    for (const event of parsed.data.events) {
      if (event.action !== 'push' || !event.target.tag) continue;
      const { repository, tag, digest, mediaType } = event.target;
      platform.state.update((s) => {
        s.registryPushes.push({ repository, tag, digest, mediaType, actor: event.actor?.name, at: platform.isoNow() });
        if (s.registryPushes.length > 500) s.registryPushes.splice(0, s.registryPushes.length - 500);
        // A push of `<release>/airflow:deploy-N` is what moves a Software Deployment to its next image.
        const release = repository.endsWith('/airflow') ? repository.slice(0, -'/airflow'.length) : undefined;
        const deployment = release ? platform.softwareDeploymentByRelease(release) : undefined;
        if (deployment && /^deploy-\d+$/.test(tag)) {
          const current = (s.software.deployments[deployment.id] ??= {});
          current.currentTag = tag;
          current.image = `${platform.urls.registryHost}/${repository}:${tag}`;
          current.imageDigest = digest;
          current.imageUpdatedAt = platform.isoNow();
          current.updatedAt = platform.isoNow();
        }
      });
    }
    sendJson(ctx.res, 200, { received: parsed.data.events.length });
  });
}
