/** Reads JWT claims without verifying the signature: the platform verifies; we only need to know what a token says. */
import * as z from 'zod';
import { CHECKED_ONCE } from '../util/checked-once.js';

const claimsSchema = z.looseObject({
  sub: z.string().optional(),
  exp: z.number().optional(),
  permissions: z.array(z.string()).optional(),
  apiTokenId: z.string().optional(),
  org_id: z.string().optional(),
});
export type TokenClaims = z.infer<typeof claimsSchema>;

/** Undefined when the string is not a JWT with a JSON payload. Accepts a `Bearer ` prefix. */
export function decodeJwtClaims(token: string): TokenClaims | undefined {
  const raw = token.replace(/^\S+\s+/, (m) => (/^bearer\s+$/i.test(m) ? '' : m)).trim();
  const parts = raw.split('.');
  if (parts.length !== 3 || parts.some((p) => p === '' || !/^[A-Za-z0-9_-]+$/.test(p))) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    const parsed = claimsSchema.safeParse(payload, CHECKED_ONCE);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** `workspaceId:<id>` and `organizationId:<id>` permissions of an Astro API token. */
export function scopeFromPermissions(permissions: string[]): { organizationId?: string; workspaceId?: string } {
  const scope: { organizationId?: string; workspaceId?: string } = {};
  for (const permission of permissions) {
    const at = permission.indexOf(':');
    if (at < 0) continue;
    const [kind, value] = [permission.slice(0, at), permission.slice(at + 1)];
    if (kind === 'workspaceId') scope.workspaceId = value;
    if (kind === 'organizationId') scope.organizationId = value;
  }
  return scope;
}
