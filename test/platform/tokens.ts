/**
 * Every credential the platform issues is an RS256 JWT signed with the platform key. Kinds are told apart by their
 * audience and claims, the way Astro's are:
 * - user access tokens (browser login, refresh): `sub` = user id, no `permissions` claim;
 * - API tokens (ASTRO_API_TOKEN): `permissions` ["organizationId:<org>", "workspaceId:<ws>" ...], `apiTokenId`, `org_id`;
 * - API-key access tokens (client credentials): `permissions` too, `gty: client-credentials`;
 * - Houston (Software) tokens: audience `houston`;
 * - registry tokens: audience = the registry service, `x5c` header, `access` claim.
 */
import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { z } from 'zod';
import type { SigningKeys } from './keys.js';

export const tokenIssuer = 'astro-local-platform';
export const houstonAudience = 'houston';

export interface Scope {
  organizationId: string;
  workspaceId?: string;
  deploymentId?: string;
}

export type Principal = { kind: 'user'; userId: string } | ({ kind: 'apiToken'; tokenId: string } & Scope) | ({ kind: 'apiKey'; clientId: string } & Scope);

export type HoustonPrincipal = { kind: 'houstonUser'; userId: string } | { kind: 'serviceAccount'; serviceAccountId: string; workspaceId: string };

export interface RegistryAccess {
  type: 'repository';
  name: string;
  actions: string[];
}

export class TokenRejected extends Error {
  constructor(
    message: string,
    readonly reason: 'expired' | 'invalid',
  ) {
    super(message);
  }
}

export function permissionsFor(scope: Scope): string[] {
  const permissions: string[] = [];
  if (scope.deploymentId) permissions.push(`deploymentId:${scope.deploymentId}`);
  if (scope.workspaceId) permissions.push(`workspaceId:${scope.workspaceId}`);
  permissions.push(`organizationId:${scope.organizationId}`);
  return permissions;
}

const platformClaims = z.object({
  sub: z.string().min(1),
  permissions: z.array(z.string()).optional(),
  apiTokenId: z.string().optional(),
  gty: z.string().optional(),
  azp: z.string().optional(),
});

const houstonClaims = z.object({ sub: z.string().min(1) });

export class TokenService {
  constructor(
    private readonly keys: SigningKeys,
    private readonly audience: string,
    private readonly now: () => number = Date.now,
  ) {}

  private sign(claims: JWTPayload, options: { audience: string | string[]; subject: string; expiresAt: number; header?: Record<string, unknown> }) {
    const iat = Math.floor(this.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.keys.kid, ...options.header })
      .setIssuer(tokenIssuer)
      .setSubject(options.subject)
      .setAudience(options.audience)
      .setIssuedAt(iat)
      .setJti(randomBytes(12).toString('base64url'))
      .setExpirationTime(Math.floor(options.expiresAt / 1000))
      .sign(this.keys.privateKey);
  }

  userAccessToken(userId: string, clientId: string, ttlSeconds: number, scope: string): Promise<string> {
    return this.sign({ azp: clientId, scope }, { audience: [this.audience, 'userinfo'], subject: userId, expiresAt: this.now() + ttlSeconds * 1000 });
  }

  idToken(user: { id: string; email: string; name: string }, clientId: string, ttlSeconds: number): Promise<string> {
    return this.sign(
      { email: user.email, email_verified: true, name: user.name, nickname: user.email.split('@')[0] },
      { audience: clientId, subject: user.id, expiresAt: this.now() + ttlSeconds * 1000 },
    );
  }

  /** `expiresAt` in ms since the epoch; may lie in the past to mint an already expired token. */
  apiToken(tokenId: string, scope: Scope, expiresAt: number): Promise<string> {
    return this.sign(
      {
        permissions: permissionsFor(scope),
        apiTokenId: tokenId,
        org_id: scope.organizationId,
        scope: 'openid',
        version: 'v1',
        isAstronomerGenerated: false,
      },
      { audience: this.audience, subject: tokenId, expiresAt },
    );
  }

  apiKeyAccessToken(clientId: string, scope: Scope, ttlSeconds: number): Promise<string> {
    return this.sign(
      { permissions: permissionsFor(scope), gty: 'client-credentials', azp: clientId, org_id: scope.organizationId },
      { audience: this.audience, subject: `${clientId}@clients`, expiresAt: this.now() + ttlSeconds * 1000 },
    );
  }

  houstonUserToken(userId: string, ttlSeconds: number): Promise<string> {
    return this.sign({ uuid: userId }, { audience: houstonAudience, subject: userId, expiresAt: this.now() + ttlSeconds * 1000 });
  }

  registryToken(subject: string, service: string, access: RegistryAccess[], ttlSeconds: number): Promise<string> {
    const nowSeconds = Math.floor(this.now() / 1000);
    return new SignJWT({ access })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', x5c: [this.keys.certDerBase64] })
      .setIssuer(tokenIssuer)
      .setSubject(subject)
      .setAudience(service)
      .setIssuedAt(nowSeconds)
      .setNotBefore(nowSeconds - 5)
      .setJti(randomBytes(12).toString('base64url'))
      .setExpirationTime(nowSeconds + ttlSeconds)
      .sign(this.keys.privateKey);
  }

  /** Verifies a REST / OAuth credential; the claims decide which kind of principal it is. */
  async verifyPlatformToken(token: string): Promise<Principal> {
    const payload = await this.verify(token, this.audience);
    const claims = platformClaims.safeParse(payload);
    if (!claims.success) throw new TokenRejected('token is missing required claims', 'invalid');
    const { permissions, apiTokenId, gty, azp, sub } = claims.data;
    if (permissions === undefined) return { kind: 'user', userId: sub };
    const scope = scopeFromPermissions(permissions);
    if (!scope) throw new TokenRejected('token permissions name no organization', 'invalid');
    if (apiTokenId) return { kind: 'apiToken', tokenId: apiTokenId, ...scope };
    if (gty === 'client-credentials' && azp) return { kind: 'apiKey', clientId: azp, ...scope };
    throw new TokenRejected('token has permissions but is neither an API token nor an API key token', 'invalid');
  }

  async verifyHoustonToken(token: string): Promise<{ userId: string }> {
    const payload = await this.verify(token, houstonAudience);
    const claims = houstonClaims.safeParse(payload);
    if (!claims.success) throw new TokenRejected('token is missing required claims', 'invalid');
    return { userId: claims.data.sub };
  }

  private async verify(token: string, audience: string): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, this.keys.publicKey, {
        issuer: tokenIssuer,
        audience,
        algorithms: ['RS256'],
        currentDate: new Date(this.now()),
      });
      return payload;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new TokenRejected('token is expired', 'expired');
      if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud') {
        throw new TokenRejected('token was not issued for this service', 'invalid');
      }
      throw new TokenRejected('token is invalid or malformed', 'invalid');
    }
  }
}

export function scopeFromPermissions(permissions: string[]): Scope | undefined {
  const values = new Map<string, string>();
  for (const p of permissions) {
    const colon = p.indexOf(':');
    if (colon > 0) values.set(p.slice(0, colon), p.slice(colon + 1));
  }
  const organizationId = values.get('organizationId');
  if (!organizationId) return undefined;
  return { organizationId, workspaceId: values.get('workspaceId'), deploymentId: values.get('deploymentId') };
}
