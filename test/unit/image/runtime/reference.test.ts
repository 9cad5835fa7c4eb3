import { describe, expect, it } from 'vitest';

import { UserError } from '../../../../src/errors.js';
import { canonicalName, formatImageReference, parseImageReference, tryParseImageReference } from '../../../../src/image/runtime/reference.js';

const digest = `sha256:${'a1'.repeat(32)}`;

describe('tryParseImageReference', () => {
  it.each([
    ['astrocrpublic.azurecr.io/runtime:3.1-8', { domain: 'astrocrpublic.azurecr.io', path: 'runtime', tag: '3.1-8' }],
    ['quay.io/astronomer/astro-runtime:12.5.0-base', { domain: 'quay.io', path: 'astronomer/astro-runtime', tag: '12.5.0-base' }],
    ['alpine', { path: 'alpine' }],
    ['library/python:3.12-slim', { path: 'library/python', tag: '3.12-slim' }],
    ['localhost:5000/runtime:3.1-8', { domain: 'localhost:5000', path: 'runtime', tag: '3.1-8' }],
    ['localhost/runtime', { domain: 'localhost', path: 'runtime' }],
    ['127.0.0.1:5555/mirror/astro-runtime:12.5.0', { domain: '127.0.0.1:5555', path: 'mirror/astro-runtime', tag: '12.5.0' }],
    ['[::1]:5000/runtime:3.1-8', { domain: '[::1]:5000', path: 'runtime', tag: '3.1-8' }],
    [`astrocrpublic.azurecr.io/runtime@${digest}`, { domain: 'astrocrpublic.azurecr.io', path: 'runtime', digest }],
    [`astrocrpublic.azurecr.io/runtime:3.1-8@${digest}`, { domain: 'astrocrpublic.azurecr.io', path: 'runtime', tag: '3.1-8', digest }],
    ['registry.example.com:443/a/b/c:t_1.x-2', { domain: 'registry.example.com:443', path: 'a/b/c', tag: 't_1.x-2' }],
    ['my__repo/name-with--dashes', { path: 'my__repo/name-with--dashes' }],
  ] as Array<[string, { domain?: string; path: string; tag?: string; digest?: string }]>)('%s', (text, expected) => {
    const parsed = tryParseImageReference(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.reference).toMatchObject({ raw: text, ...expected });
    expect(parsed.reference.name).toBe(expected.domain ? `${expected.domain}/${expected.path}` : expected.path);
    expect(formatImageReference(parsed.reference)).toBe(text);
  });

  it.each([
    ['', /empty/],
    ['Quay.io/Astronomer/astro-runtime:12.5.0', /lowercase/],
    ['quay.io/Astronomer/astro-runtime:12.5.0', /lowercase/],
    ['runtime:', /not a valid tag/],
    ['runtime:-bad', /not a valid tag/],
    [`runtime:${'x'.repeat(129)}`, /not a valid tag/],
    ['runtime@sha256:abc', /not a valid digest/],
    [`runtime@sha256:${'a'.repeat(63)}`, /not a valid sha256 digest/],
    [`runtime@sha256:${'a'.repeat(65)}`, /64 hex digits/],
    ['a//b', /empty repository path/],
    ['/runtime', /empty repository path/],
    ['run time', /whitespace/],
    ['-runtime', /not a valid repository path component/],
    ['runtime.', /not a valid repository path component/],
    ['bad_host_.io:x/runtime', /not a valid registry host/],
    [`${'a'.repeat(256)}`, /longer than 255/],
  ])('rejects %j', (text, reason) => {
    const parsed = tryParseImageReference(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe('parseImageReference', () => {
  it('throws a UserError naming the reference', () => {
    expect(() => parseImageReference('Bad/Name')).toThrow(UserError);
    expect(() => parseImageReference('Bad/Name')).toThrow(/Invalid image reference 'Bad\/Name'/);
  });
});

describe('canonicalName', () => {
  it.each([
    ['alpine', 'docker.io/library/alpine'],
    ['astronomer/ap-airflow', 'docker.io/astronomer/ap-airflow'],
    ['quay.io/astronomer/astro-runtime', 'quay.io/astronomer/astro-runtime'],
  ])('%s -> %s', (text, expected) => {
    expect(canonicalName(parseImageReference(text))).toBe(expected);
  });
});
