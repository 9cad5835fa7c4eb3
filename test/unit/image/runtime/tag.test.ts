import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { UserError } from '../../../../src/errors.js';
import { parseRuntimeFeedText, type RuntimeFeed } from '../../../../src/image/runtime/feed.js';
import { parseImageReference } from '../../../../src/image/runtime/reference.js';
import {
  AIRFLOW2_RUNTIME_REPOSITORY,
  AIRFLOW3_RUNTIME_REPOSITORY,
  analyzeRuntimeTag,
  classifyBaseImage,
  formatRuntimeTag,
  parseRuntimeTag,
  RuntimeImageError,
  type RuntimeTagParts,
} from '../../../../src/image/runtime/tag.js';

function fixtureFeed(): RuntimeFeed {
  const parsed = parseRuntimeFeedText(readFileSync(new URL('../../../platform/fixtures/updates-feed.json', import.meta.url), 'utf8'));
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.feed;
}
const feed = fixtureFeed();

type Expected = Partial<RuntimeTagParts>;
const af3 = (version: string, rest: Expected = {}): Expected => ({
  version,
  generation: 'airflow3',
  floating: false,
  os: 'debian',
  slim: false,
  base: false,
  ...rest,
});
const af2 = (version: string, rest: Expected = {}): Expected => ({ ...af3(version, rest), generation: 'airflow2', ...rest });

/**
 * Every tag form seed 003 describes. The excerpt lost its code blocks, so the examples are rebuilt from its prose:
 * the general formats, floating tags, base / Python / OS-variant / slim images, and the combinations it names.
 */
const seedExamples: Array<[string, string, Expected]> = [
  // Runtime versioning: major.minor-patch for Airflow 3, major.minor.patch for Airflow 2.
  ['Airflow 3 version', '3.1-1', af3('3.1-1')],
  ['Airflow 2 version', '12.1.0', af2('12.1.0')],
  // Floating tags: 3.1 and 3.1-base.
  ['floating tag', '3.1', af3('3.1', { floating: true })],
  ['floating base tag', '3.1-base', af3('3.1', { floating: true, base: true })],
  // Base images.
  ['Airflow 3 base image', '3.1-1-base', af3('3.1-1', { base: true })],
  ['Airflow 2 base image', '12.1.0-base', af2('12.1.0', { base: true })],
  // Python version images (Runtime 9 and later).
  ['Airflow 3 Python image', '3.1-1-python-3.12', af3('3.1-1', { python: '3.12' })],
  ['Airflow 2 Python image', '12.1.0-python-3.11', af2('12.1.0', { python: '3.11' })],
  ['Airflow 2 Python image at Runtime 9', '9.1.0-python-3.10', af2('9.1.0', { python: '3.10' })],
  ['Airflow 3 Python base image', '3.1-1-python-3.11-base', af3('3.1-1', { python: '3.11', base: true })],
  // Operating system variant images.
  ['Airflow 3 UBI 9 image', '3.1-1-ubi9', af3('3.1-1', { os: 'ubi9' })],
  ['Airflow 2 UBI 9 image', '12.5.0-ubi9', af2('12.5.0', { os: 'ubi9' })],
  ['Airflow 2 UBI 9 image, experimental 11.x', '11.13.0-ubi9', af2('11.13.0', { os: 'ubi9' })],
  ['Airflow 2 UBI 9 image from 12.3.0', '12.3.0-ubi9', af2('12.3.0', { os: 'ubi9' })],
  ['Airflow 3 UBI 9 base image with Python 3.11', '3.1-1-ubi9-python-3.11-base', af3('3.1-1', { os: 'ubi9', python: '3.11', base: true })],
  ['Airflow 2 UBI 9 base image with Python 3.11', '12.5.0-ubi9-python-3.11-base', af2('12.5.0', { os: 'ubi9', python: '3.11', base: true })],
  // Slim images (Airflow 2, Runtime 11 and later).
  ['Airflow 2 slim image', '12.1.0-slim', af2('12.1.0', { slim: true })],
  ['Airflow 2 slim image at Runtime 11', '11.0.0-slim', af2('11.0.0', { slim: true })],
  ['Airflow 2 slim base image with Python 3.11 on Debian', '12.1.0-python-3.11-slim-base', af2('12.1.0', { python: '3.11', slim: true, base: true })],
  ['Airflow 2 all segments', '12.5.0-ubi9-python-3.11-slim-base', af2('12.5.0', { os: 'ubi9', python: '3.11', slim: true, base: true })],
  // The order Astronomer's CLI examples use for slim (accepted, kept as written).
  ['slim before Python (Astronomer CLI examples)', '13.7.0-slim-python-3.12', af2('13.7.0', { slim: true, python: '3.12', slimBeforePython: true })],
  [
    'slim before Python, base',
    '13.7.0-ubi9-slim-python-3.12-base',
    af2('13.7.0', { os: 'ubi9', slim: true, python: '3.12', base: true, slimBeforePython: true }),
  ],
  // Pre-releases (reference 7.3's 3.1-1-rc1).
  ['Airflow 3 pre-release', '3.1-1-rc1', af3('3.1-1-rc1')],
  ['Airflow 3 pre-release base', '3.1-1-rc1-base', af3('3.1-1-rc1', { base: true })],
];

describe('seed 003 tag examples are accepted', () => {
  it.each(seedExamples)('%s: %s', (_name, tag, expected) => {
    const parsed = parseRuntimeTag(tag);
    expect(parsed).toMatchObject({ tag, ...expected });
    if (expected.python === undefined) expect(parsed.python).toBeUndefined();
    if (!expected.slimBeforePython) expect(parsed.slimBeforePython).toBeUndefined();
    // Formatting a parsed tag gives back exactly what was written.
    expect(formatRuntimeTag(parsed)).toBe(tag);
  });

  it('also with the updates feed at hand', () => {
    for (const [, tag] of seedExamples) expect(analyzeRuntimeTag(tag, { feed }).problems).toEqual([]);
  });
});

describe('formatRuntimeTag', () => {
  it('writes the documented order', () => {
    expect(formatRuntimeTag({ version: '12.5.0', generation: 'airflow2', floating: false, os: 'ubi9', python: '3.11', slim: true, base: true })).toBe(
      '12.5.0-ubi9-python-3.11-slim-base',
    );
    expect(formatRuntimeTag({ version: '3.1', generation: 'airflow3', floating: true, os: 'debian', slim: false, base: true })).toBe('3.1-base');
  });
});

/** [name, tag, corrected tag (undefined when no single fix exists), problem pattern] without a feed. */
const errorCases: Array<[string, string, string | undefined, RegExp]> = [
  // order
  ['base before python', '3.1-8-base-python-3.12', '3.1-8-python-3.12-base', /out of order/],
  ['ubi9 after python', '3.1-8-python-3.12-ubi9', '3.1-8-ubi9-python-3.12', /out of order/],
  ['ubi9 last', '12.5.0-python-3.11-slim-base-ubi9', '12.5.0-ubi9-python-3.11-slim-base', /out of order/],
  ['base before slim', '12.5.0-base-slim', '12.5.0-slim-base', /out of order/],
  ['slim before python keeps that order when fixing', '13.7.0-base-slim-python-3.12', '13.7.0-slim-python-3.12-base', /out of order/],
  ['pre-release after a segment', '3.1-1-base-rc1', '3.1-1-rc1-base', /out of order/],
  // impossible combinations
  ['slim on Airflow 3', '3.1-8-slim', '3.1-8', /-slim exists only for Airflow 2/],
  ['slim on Airflow 3 with python and base', '3.1-8-python-3.12-slim-base', '3.1-8-python-3.12-base', /-slim exists only for Airflow 2/],
  ['floating with python', '3.1-python-3.12', '3.1-<patch>-python-3.12', /floating tags exist only as 3.1 and 3.1-base/],
  ['floating with ubi9', '3.1-ubi9-base', '3.1-<patch>-ubi9-base', /floating tags exist only/],
  ['python before Runtime 9', '8.0.0-python-3.10', '8.0.0', /Python-specific images start with Astro Runtime 9.0.0/],
  ['slim before Runtime 11', '10.0.0-slim', '10.0.0', /slim images start with Astro Runtime 11.0.0/],
  ['ubi9 before 11.13.0', '11.12.0-ubi9', '11.12.0', /RHEL UBI 9 images exist for Astro Runtime 11.13.0 to 11.x and for 12.3.0 and later/],
  ['ubi9 in 12.0-12.2', '12.1.0-ubi9-python-3.11', '12.1.0-python-3.11', /RHEL UBI 9/],
  // version spelling
  ['Airflow 3 version written with a dot', '3.1.8', '3.1-8', /hyphen before the patch number: 3.1-8, not 3.1.8/],
  ['leading v', 'v3.1-8', '3.1-8', /without a leading 'v'/],
  ['leading zeros', '3.01-08', '3.1-8', /leading zeros/],
  ['Airflow 2 without patch', '12.5', '12.5.<patch>', /need the patch version/],
  ['Airflow 2 without patch, slim', '12.5-slim', '12.5.<patch>-slim', /need the patch version/],
  ['no version at all', 'latest', '<version>', /does not start with an Astro Runtime version/],
  ['mixed formats', '2.10-3', undefined, /the X.Y-Z form is for Airflow 3 Runtime/],
  // unknown and misspelled segments
  ['unknown segment', '3.1-8-foo', '3.1-8', /unknown segment -foo/],
  ['misspelled base', '3.1-8-bsae', '3.1-8-base', /did you mean -base/],
  ['misspelled slim', '12.5.0-slm', '12.5.0-slim', /did you mean -slim/],
  ['misspelled python', '3.1-8-pyhton-3.12', '3.1-8-python-3.12', /write the Python segment as -python-3.12, not -pyhton-3.12/],
  ['py shorthand', '3.1-8-py-3.12', '3.1-8-python-3.12', /not -py-3.12/],
  ['python glued to its version', '3.1-8-python3.12', '3.1-8-python-3.12', /not -python3.12/],
  ['py312', '12.5.0-py312', '12.5.0-python-3.12', /not -py312/],
  ['python without dot', '3.1-8-python-312', '3.1-8-python-3.12', /with a dot/],
  ['python with patch', '3.1-8-python-3.12.4', '3.1-8-python-3.12', /minor version only/],
  ['bare python version', '3.1-8-3.12', '3.1-8-python-3.12', /written -python-3.12/],
  ['python without version', '3.1-8-python', undefined, /must be followed by a Python version/],
  ['python 2', '12.5.0-python-2.7', undefined, /built for Python 3, not Python 2.7/],
  ['ubi8', '3.1-8-ubi8', '3.1-8-ubi9', /-ubi8 does not exist/],
  ['rhel', '3.1-8-rhel', '3.1-8-ubi9', /written -ubi9, not -rhel/],
  ['ubi-9', '3.1-8-ubi-9-base', '3.1-8-ubi9-base', /not -ubi-9/],
  ['debian spelled out', '3.1-8-debian', '3.1-8', /Debian is the default OS/],
  ['onbuild', '12.5.0-onbuild', '12.5.0', /remove -onbuild/],
  ['upper case', '12.5.0-BASE', '12.5.0-base', /lower-case/],
  ['double dash', '3.1-8--base', '3.1-8-base', /extra '-'/],
  ['trailing dash', '3.1-8-', '3.1-8', /extra '-'/],
  ['underscore separator', '3.1-8_base', '3.1-8-base', /separated .* by '-'/],
  ['repeated segment', '3.1-8-base-base', '3.1-8-base', /-base appears more than once/],
  ['two python versions', '3.1-8-python-3.12-python-3.11', undefined, /two different Python versions/],
  // several problems at once get one corrected tag
  ['many problems', 'v3.1.8-BASE-pyhton-3.12-slim', '3.1-8-python-3.12-base', /.*/],
];

describe('wrong tags are rejected with the corrected tag', () => {
  it.each(errorCases)('%s: %s', (_name, tag, corrected, problem) => {
    const analysis = analyzeRuntimeTag(tag);
    expect(analysis.tag).toBeUndefined();
    expect(analysis.problems.length).toBeGreaterThan(0);
    expect(analysis.problems.join('\n')).toMatch(problem);
    expect(analysis.corrected).toBe(corrected);
    expect(analysis.correctedIsTemplate).toBe(corrected?.includes('<') ?? false);
    // A corrected tag (once any placeholder is filled in) is itself valid.
    if (corrected !== undefined && !corrected.includes('<')) expect(analyzeRuntimeTag(corrected).problems).toEqual([]);

    let thrown: unknown;
    try {
      parseRuntimeTag(tag);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RuntimeImageError);
    expect(thrown).toBeInstanceOf(UserError);
    const error = thrown as RuntimeImageError;
    expect(error.message).toContain(`The Astro Runtime image '${tag}' is not valid:`);
    if (corrected !== undefined) expect(error.message).toContain(`Use: ${corrected}`);
    else expect(error.message).not.toContain('Use:');
  });

  it('lists every problem of a tag with many', () => {
    const analysis = analyzeRuntimeTag('v3.1.8-BASE-pyhton-3.12-slim');
    expect(analysis.problems).toEqual([
      "Runtime tags start with the version number, without a leading 'v'",
      'Airflow 3 Runtime versions have a hyphen before the patch number: 3.1-8, not 3.1.8',
      'write the Python segment as -python-3.12, not -pyhton-3.12',
      'Runtime tags are lower-case',
      'segments are out of order: -base-python-3.12-slim should read in the order <version>[-ubi9][-python-3.N][-base]',
      '-slim exists only for Airflow 2 Runtime: every Airflow 3 image already ships only the providers Astro needs',
    ]);
  });
});

describe('with the updates feed, corrections use real versions', () => {
  it.each([
    ['floating with python pins the latest patch', '3.1-python-3.12', '3.1-9-python-3.12'],
    ['floating 3.2 skips the yanked 3.2-2', '3.2-ubi9', '3.2-1-ubi9'],
    ['Airflow 2 without patch gets the latest patch', '12.5-python-3.11', '12.5.0-python-3.11'],
    ['no version at all gets the latest stable', 'latest', '3.2-1'],
    ['Python the release does not ship', '3.1-8-python-3.9', '3.1-8'],
    ['Python the release does not ship, base', '12.5.0-python-3.8-base', '12.5.0-base'],
  ])('%s: %s -> %s', (_name, tag, corrected) => {
    const analysis = analyzeRuntimeTag(tag, { feed });
    expect(analysis.corrected).toBe(corrected);
    expect(analysis.correctedIsTemplate).toBe(false);
    expect(analyzeRuntimeTag(corrected, { feed }).problems).toEqual([]);
  });

  it('names the Python versions a release ships', () => {
    expect(analyzeRuntimeTag('3.1-8-python-3.9', { feed }).problems).toEqual([
      'Astro Runtime 3.1-8 is published for Python 3.10, 3.11, 3.12, 3.13; there is no -python-3.9 image (without it you get the default, Python 3.12)',
    ]);
  });

  it('uses the feed to recognise a dotted Airflow 3 version', () => {
    // Not the 3.x heuristic: the feed knows 3.0-7 and no Airflow 2 Runtime 3.0.7.
    expect(analyzeRuntimeTag('3.0.7', { feed }).corrected).toBe('3.0-7');
    expect(analyzeRuntimeTag('3.0.7').tag?.version).toBe('3.0.7');
  });
});

describe('classifyBaseImage', () => {
  const classify = (image: string) => classifyBaseImage(parseImageReference(image), { feed });
  const digest = `sha256:${'ab'.repeat(32)}`;

  it.each([
    [`${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8`, AIRFLOW3_RUNTIME_REPOSITORY, '3.1-8'],
    [`${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-base`, AIRFLOW3_RUNTIME_REPOSITORY, '3.1'],
    // Airflow 2 tags are published on both registries.
    [`${AIRFLOW2_RUNTIME_REPOSITORY}:12.5.0-python-3.11-slim`, AIRFLOW2_RUNTIME_REPOSITORY, '12.5.0'],
    [`${AIRFLOW3_RUNTIME_REPOSITORY}:12.5.0-slim`, AIRFLOW3_RUNTIME_REPOSITORY, '12.5.0'],
    [`${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8@${digest}`, AIRFLOW3_RUNTIME_REPOSITORY, '3.1-8'],
  ])('%s is Runtime', (image, repository, version) => {
    const result = classify(image);
    expect(result.kind).toBe('runtime');
    if (result.kind !== 'runtime') return;
    expect(result.repository).toBe(repository);
    expect(result.tag?.version).toBe(version);
  });

  it('accepts a digest without a tag; the label will tell the version', () => {
    const result = classify(`${AIRFLOW3_RUNTIME_REPOSITORY}@${digest}`);
    expect(result).toMatchObject({ kind: 'runtime', repository: AIRFLOW3_RUNTIME_REPOSITORY });
    expect(result.kind === 'runtime' && result.tag).toBeUndefined();
  });

  it.each([
    'python:3.12-slim',
    'ubuntu',
    'quay.io/astronomer/ap-airflow:2.2.5-onbuild', // Astronomer Certified, not Runtime
    'registry.example.com/mirror/astro-runtime:3.1-8', // a private mirror: the label decides
    'localhost:5000/runtime:3.1-8',
    'astrocrpublic.azurecr.io/astro-agent:1.1.0',
    'astrocrpublic.azurecr.io/runtime-dev:3.2-1-nightly', // other Astronomer repositories are not typos
    'quay.io/astronomer/astro-runtime-dev:13.1.0',
  ])('%s is not a Runtime repository', (image) => {
    expect(classify(image).kind).toBe('not-runtime');
  });

  /** [image, corrected image, problem pattern] */
  it.each([
    [
      'Airflow 3 tag on the Airflow 2 registry',
      `${AIRFLOW2_RUNTIME_REPOSITORY}:3.1-8`,
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8`,
      /published only at astrocrpublic/,
    ],
    [
      'Airflow 3 floating tag on the Airflow 2 registry',
      `${AIRFLOW2_RUNTIME_REPOSITORY}:3.1-base`,
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-base`,
      /published only at/,
    ],
    [
      'wrong path on the new registry',
      'astrocrpublic.azurecr.io/astro-runtime:3.1-8',
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8`,
      /not an Astro Runtime repository/,
    ],
    ['misspelled path on the new registry', 'astrocrpublic.azurecr.io/runtim:3.1-8', `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8`, /not an Astro Runtime repository/],
    [
      'quay path on the new registry',
      'astrocrpublic.azurecr.io/astronomer/astro-runtime:3.1-8',
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8`,
      /not an Astro Runtime repository/,
    ],
    ['wrong path on quay', 'quay.io/astronomer/astro-runtimes:12.5.0', `${AIRFLOW2_RUNTIME_REPOSITORY}:12.5.0`, /not an Astro Runtime repository/],
    ['quay runtime path', 'quay.io/astronomer/runtime:12.5.0', `${AIRFLOW2_RUNTIME_REPOSITORY}:12.5.0`, /not an Astro Runtime repository/],
    ['misspelled host', 'quay.oi/astronomer/astro-runtime:12.5.0', `${AIRFLOW2_RUNTIME_REPOSITORY}:12.5.0`, /not an Astro Runtime repository/],
    ['no tag', AIRFLOW3_RUNTIME_REPOSITORY, `${AIRFLOW3_RUNTIME_REPOSITORY}:3.2-1`, /no tag, so Docker would look for 'latest'/],
    ['no tag on quay gets the latest Airflow 2 version', AIRFLOW2_RUNTIME_REPOSITORY, `${AIRFLOW2_RUNTIME_REPOSITORY}:13.1.0`, /no tag/],
    [
      'wrong tag and registry together',
      `${AIRFLOW2_RUNTIME_REPOSITORY}:3.1-8-slim`,
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8`,
      /-slim exists only for Airflow 2[\s\S]*published only at/,
    ],
    [
      'a corrected tag drops a digest that belonged to the wrong tag',
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8-slim@${digest}`,
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8`,
      /-slim/,
    ],
    [
      'a correct tag keeps its digest when only the registry changes',
      `${AIRFLOW2_RUNTIME_REPOSITORY}:3.1-8@${digest}`,
      `${AIRFLOW3_RUNTIME_REPOSITORY}:3.1-8@${digest}`,
      /published only at/,
    ],
  ])('%s', (_name, image, corrected, problem) => {
    let thrown: unknown;
    try {
      classify(image);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RuntimeImageError);
    const error = thrown as RuntimeImageError;
    expect(error.image).toBe(image);
    expect(error.correctedImage).toBe(corrected);
    expect(error.problems.join('\n')).toMatch(problem);
    expect(error.message).toContain(`Use: ${corrected}`);
  });

  it('without a feed, a missing tag gets a template', () => {
    try {
      classifyBaseImage(parseImageReference(AIRFLOW3_RUNTIME_REPOSITORY));
      expect.unreachable();
    } catch (error) {
      expect((error as RuntimeImageError).correctedImage).toBe(`${AIRFLOW3_RUNTIME_REPOSITORY}:<version>`);
      expect((error as RuntimeImageError).correctedIsTemplate).toBe(true);
      expect((error as Error).message).toContain('fill in the <placeholder>');
    }
  });

  it('an unfixable tag has no corrected image', () => {
    try {
      classify(`${AIRFLOW3_RUNTIME_REPOSITORY}:2.10-3`);
      expect.unreachable();
    } catch (error) {
      expect((error as RuntimeImageError).correctedImage).toBeUndefined();
    }
  });
});
