/**
 * Container image references (`[domain[:port]/]path[:tag][@digest]`) as Docker's distribution grammar defines them.
 * Names are kept as written (no `docker.io/library/` normalisation) because the Runtime rules compare repositories
 * exactly as users spell them; `canonicalName` is there for the few places that need Docker's view.
 */
import { UserError } from '../../errors.js';

export interface ImageReference {
  /** The reference exactly as given. */
  raw: string;
  /** Registry host (with port), when the first path component names one. */
  domain?: string;
  /** Repository path inside the registry, e.g. `astronomer/astro-runtime`. */
  path: string;
  /** `domain/path` as written, e.g. `quay.io/astronomer/astro-runtime`. */
  name: string;
  tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  digest?: string;
}

export type ReferenceParse = { ok: true; reference: ImageReference } | { ok: false; reason: string };

const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainPattern = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]+)?$`);
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^\w[\w.-]{0,127}$/;
const digestPattern = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const maxNameLength = 255;

/** Docker treats the first component as a registry host when it has a dot or a port, or is `localhost`. */
function looksLikeDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();
}

export function tryParseImageReference(text: string): ReferenceParse {
  if (text === '') return { ok: false, reason: 'the image reference is empty' };
  if (/\s/.test(text)) return { ok: false, reason: `'${text}' contains whitespace` };

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) return { ok: false, reason: `'${digest}' is not a valid digest (expected sha256:<64 hex digits>)` };
    if (digest.startsWith('sha256:') && digest.length !== 'sha256:'.length + 64) {
      return { ok: false, reason: `'${digest}' is not a valid sha256 digest (expected 64 hex digits)` };
    }
  }

  // A tag follows the last ':' only if no '/' comes after it; otherwise that ':' is a registry port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) return { ok: false, reason: `'${tag}' is not a valid tag` };
  }

  const components = rest.split('/');
  let domain: string | undefined;
  if (components.length > 1 && looksLikeDomain(components[0] as string)) {
    domain = components.shift() as string;
    if (!domainPattern.test(domain)) return { ok: false, reason: `'${domain}' is not a valid registry host` };
  }
  if (components.length === 0 || components.some((c) => c === '')) {
    return { ok: false, reason: `'${text}' has an empty repository path component` };
  }
  for (const component of components) {
    if (component !== component.toLowerCase()) return { ok: false, reason: `repository name must be lowercase ('${component}')` };
    if (!pathComponentPattern.test(component)) return { ok: false, reason: `'${component}' is not a valid repository path component` };
  }
  const path = components.join('/');
  const name = domain ? `${domain}/${path}` : path;
  if (name.length > maxNameLength) return { ok: false, reason: `repository name is longer than ${maxNameLength} characters` };

  const reference: ImageReference = { raw: text, path, name };
  if (domain !== undefined) reference.domain = domain;
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  return { ok: true, reference };
}

/** Parses an image reference, throwing a UserError that explains what is wrong with it. */
export function parseImageReference(text: string): ImageReference {
  const parsed = tryParseImageReference(text);
  if (!parsed.ok) throw new UserError(`Invalid image reference '${text}': ${parsed.reason}.`);
  return parsed.reference;
}

export function formatImageReference(reference: Pick<ImageReference, 'name' | 'tag' | 'digest'>): string {
  return `${reference.name}${reference.tag !== undefined ? `:${reference.tag}` : ''}${reference.digest !== undefined ? `@${reference.digest}` : ''}`;
}

/** Docker's fully qualified name: `alpine` -> `docker.io/library/alpine`. */
export function canonicalName(reference: Pick<ImageReference, 'domain' | 'path'>): string {
  if (reference.domain !== undefined) return `${reference.domain}/${reference.path}`;
  return reference.path.includes('/') ? `docker.io/${reference.path}` : `docker.io/library/${reference.path}`;
}
