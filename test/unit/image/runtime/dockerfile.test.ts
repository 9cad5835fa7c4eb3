import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UserError } from '../../../../src/errors.js';
import { DockerfileError, loadDockerfile, parseDockerfile } from '../../../../src/image/runtime/dockerfile.js';

const digest = `sha256:${'0f'.repeat(32)}`;

function baseOf(content: string, buildArgs?: Record<string, string>) {
  return parseDockerfile(content, buildArgs ? { buildArgs } : {}).base;
}

describe('parseDockerfile: the first stage', () => {
  it.each([
    ['plain', 'FROM astrocrpublic.azurecr.io/runtime:3.1-8\n', 'astrocrpublic.azurecr.io/runtime:3.1-8', 1],
    ['lower-case keyword', 'from quay.io/astronomer/astro-runtime:12.5.0\n', 'quay.io/astronomer/astro-runtime:12.5.0', 1],
    [
      'leading blank lines and comments',
      '\n# my project\n\n   # indented comment\nFROM astrocrpublic.azurecr.io/runtime:3.1-8\n',
      'astrocrpublic.azurecr.io/runtime:3.1-8',
      5,
    ],
    ['indented FROM', '   FROM astrocrpublic.azurecr.io/runtime:3.1-8', 'astrocrpublic.azurecr.io/runtime:3.1-8', 1],
    ['CRLF line endings', '# c\r\nFROM astrocrpublic.azurecr.io/runtime:3.1-8\r\nRUN true\r\n', 'astrocrpublic.azurecr.io/runtime:3.1-8', 2],
    ['byte order mark', '\uFEFFFROM astrocrpublic.azurecr.io/runtime:3.1-8', 'astrocrpublic.azurecr.io/runtime:3.1-8', 1],
    ['continuation', 'FROM \\\n  astrocrpublic.azurecr.io/runtime:3.1-8\n', 'astrocrpublic.azurecr.io/runtime:3.1-8', 1],
    [
      'continuation with trailing spaces and a comment inside',
      'FROM \\  \n# a comment\n\n  astrocrpublic.azurecr.io/runtime:3.1-8 \\\n  AS runtime\n',
      'astrocrpublic.azurecr.io/runtime:3.1-8',
      1,
    ],
    ['registry with port', 'FROM localhost:5000/runtime:3.1-8', 'localhost:5000/runtime:3.1-8', 1],
    ['digest', `FROM astrocrpublic.azurecr.io/runtime:3.1-8@${digest}`, `astrocrpublic.azurecr.io/runtime:3.1-8@${digest}`, 1],
  ])('%s', (_name, content, image, line) => {
    const base = baseOf(content);
    expect(base.image).toBe(image);
    expect(base.reference?.raw).toBe(image);
    expect(base.line).toBe(line);
  });

  it('reads --platform, AS name and digest parts', () => {
    const base = baseOf(`FROM --platform=linux/amd64 astrocrpublic.azurecr.io/runtime@${digest} AS Runtime`);
    expect(base).toMatchObject({ platform: 'linux/amd64', platformAsWritten: 'linux/amd64', name: 'runtime', scratch: false });
    expect(base.reference).toMatchObject({ name: 'astrocrpublic.azurecr.io/runtime', digest });
    expect(base.reference?.tag).toBeUndefined();
  });

  it('recognises scratch', () => {
    expect(baseOf('FROM scratch')).toMatchObject({ scratch: true, image: 'scratch' });
  });
});

describe('parser directives', () => {
  it('honours # escape=` for line continuations', () => {
    const content = '# escape=`\nFROM `\n  astrocrpublic.azurecr.io/runtime:3.1-8\nRUN echo `\n  hi\n';
    const parsed = parseDockerfile(content);
    expect(parsed.directives).toEqual({ escape: '`' });
    expect(parsed.base.image).toBe('astrocrpublic.azurecr.io/runtime:3.1-8');
  });

  it('keeps # syntax= as a directive', () => {
    const parsed = parseDockerfile('# syntax=docker/dockerfile:1\n#escape=\\\nFROM astrocrpublic.azurecr.io/runtime:3.1-8');
    expect(parsed.directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '\\' });
  });

  it('stops reading directives after the first other line', () => {
    const parsed = parseDockerfile('# a comment\n# escape=`\nFROM astrocrpublic.azurecr.io/runtime:3.1-8');
    expect(parsed.directives).toEqual({});
  });

  it.each([
    ['# escape=x\nFROM a', /invalid escape directive 'x'/],
    ['# escape=`\n# escape=\\\nFROM a', /Dockerfile:2: the parser directive 'escape' is given twice/],
  ])('rejects %j', (content, message) => {
    expect(() => parseDockerfile(content)).toThrow(message);
  });
});

describe('ARG substitution in FROM', () => {
  it.each([
    ['${VAR}', 'ARG TAG=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:${TAG}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    ['$VAR', 'ARG TAG=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:$TAG', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    ['whole image', 'ARG BASE=astrocrpublic.azurecr.io/runtime:3.1-8\nFROM ${BASE}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    ['quoted default', 'ARG TAG="3.1-8"\nFROM astrocrpublic.azurecr.io/runtime:${TAG}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    ['single-quoted default', "ARG TAG='3.1-8'\nFROM astrocrpublic.azurecr.io/runtime:${TAG}", undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    [
      'several on one line',
      'ARG REPO=astrocrpublic.azurecr.io/runtime VERSION=3.1-8\nFROM ${REPO}:${VERSION}',
      undefined,
      'astrocrpublic.azurecr.io/runtime:3.1-8',
    ],
    [
      'default referencing an earlier ARG',
      'ARG V=3.1-8\nARG T=${V}-base\nFROM astrocrpublic.azurecr.io/runtime:${T}',
      undefined,
      'astrocrpublic.azurecr.io/runtime:3.1-8-base',
    ],
    [
      '--build-arg overrides the default',
      'ARG TAG=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:${TAG}',
      { TAG: '3.1-9' },
      'astrocrpublic.azurecr.io/runtime:3.1-9',
    ],
    [
      '--build-arg fills an ARG without default',
      'ARG TAG\nFROM astrocrpublic.azurecr.io/runtime:${TAG}',
      { TAG: '3.2-1' },
      'astrocrpublic.azurecr.io/runtime:3.2-1',
    ],
    ['--build-arg for an undeclared ARG is ignored', 'FROM astrocrpublic.azurecr.io/runtime:3.1-8', { TAG: '9.9-9' }, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    [':- default when unset', 'ARG TAG\nFROM astrocrpublic.azurecr.io/runtime:${TAG:-3.1-8}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    [':- default when empty', 'ARG TAG=\nFROM astrocrpublic.azurecr.io/runtime:${TAG:-3.1-8}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    ['- keeps an empty value', 'ARG SUFFIX=\nFROM astrocrpublic.azurecr.io/runtime:3.1-8${SUFFIX-base}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    [
      ':+ alternative when set',
      'ARG BASE=1\nFROM astrocrpublic.azurecr.io/runtime:3.1-8${BASE:+-base}',
      undefined,
      'astrocrpublic.azurecr.io/runtime:3.1-8-base',
    ],
    [':+ nothing when unset', 'ARG BASE\nFROM astrocrpublic.azurecr.io/runtime:3.1-8${BASE:+-base}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    ['nested default', 'ARG V=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:${TAG:-${V}}', undefined, 'astrocrpublic.azurecr.io/runtime:3.1-8'],
    [
      'ARGs after FROM do not apply to FROM',
      'ARG TAG=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:${TAG}\nARG TAG=0.0-0',
      undefined,
      'astrocrpublic.azurecr.io/runtime:3.1-8',
    ],
  ])('%s', (_name, content, buildArgs, image) => {
    const base = baseOf(content, buildArgs);
    expect(base.image).toBe(image);
    expect(base.reference?.raw).toBe(image);
  });

  it('keeps the image as written next to the expanded one', () => {
    const base = baseOf('ARG TAG=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:${TAG}');
    expect(base.imageAsWritten).toBe('astrocrpublic.azurecr.io/runtime:${TAG}');
  });

  it('keeps escaped and single-quoted dollars literal', () => {
    const parsed = parseDockerfile('ARG A=\\$B C=\'$B\' D="\\$B" E="$F"\nARG F=f\nFROM x');
    expect(parsed.globalArgs).toEqual({ A: '$B', C: '$B', D: '$B', E: '', F: 'f' });
  });

  it('reports effective global ARG values', () => {
    const parsed = parseDockerfile('ARG A=1 B\nARG C=${A}2\nFROM x', { buildArgs: { B: 'b' } });
    expect(parsed.globalArgs).toEqual({ A: '1', B: 'b', C: '12' });
  });

  it('predefines the linux/amd64 platform arguments for FROM', () => {
    const base = baseOf('FROM --platform=$BUILDPLATFORM astrocrpublic.azurecr.io/runtime:3.1-8');
    expect(base.platform).toBe('linux/amd64');
    expect(base.platformAsWritten).toBe('$BUILDPLATFORM');
  });

  it('lets the caller describe another build platform', () => {
    const parsed = parseDockerfile('FROM --platform=${TARGETPLATFORM} astrocrpublic.azurecr.io/runtime:3.1-8', {
      builtinArgs: { TARGETPLATFORM: 'linux/arm64' },
    });
    expect(parsed.base.platform).toBe('linux/arm64');
  });
});

describe('stages', () => {
  const multiStage = [
    'ARG RUNTIME=astrocrpublic.azurecr.io/runtime:3.1-8',
    'FROM python:3.12-slim AS Builder',
    'RUN pip wheel -w /wheels some-package',
    'RUN <<EOF',
    'FROM not-a-stage-this-is-heredoc-text',
    'EOF',
    'COPY <<-CONF /etc/x.conf',
    '\tFROM also-heredoc',
    '\tCONF',
    'FROM ${RUNTIME} AS runtime',
    'COPY --from=builder /wheels /wheels',
    'FROM runtime AS final',
    'FROM scratch AS empty',
    'FROM final',
  ].join('\n');

  it('lists every FROM, skipping heredoc bodies', () => {
    const parsed = parseDockerfile(multiStage);
    expect(parsed.stages.map((s) => [s.line, s.image, s.name ?? null, s.fromStage ?? null, s.scratch])).toEqual([
      [2, 'python:3.12-slim', 'builder', null, false],
      [10, 'astrocrpublic.azurecr.io/runtime:3.1-8', 'runtime', null, false],
      [12, 'runtime', 'final', 'runtime', false],
      [13, 'scratch', 'empty', null, true],
      [14, 'final', null, 'final', false],
    ]);
  });

  it('base is the first stage; finalBase follows stage links from the last stage', () => {
    const parsed = parseDockerfile(multiStage);
    expect(parsed.base.image).toBe('python:3.12-slim');
    expect(parsed.finalBase.image).toBe('astrocrpublic.azurecr.io/runtime:3.1-8');
    expect(parsed.finalBase.line).toBe(10);
  });

  it('single-stage Dockerfiles have the same base and finalBase', () => {
    const parsed = parseDockerfile('FROM astrocrpublic.azurecr.io/runtime:3.1-8\nRUN true');
    expect(parsed.finalBase).toBe(parsed.base);
  });
});

describe('errors name the file and line', () => {
  it.each([
    ['no FROM', 'ARG A=1\n# nothing\n', /^Dockerfile: no FROM instruction found$/],
    ['empty file', '', /no FROM instruction found/],
    ['instruction before FROM', 'ENV A=1\nFROM x', /^Dockerfile:1: ENV comes before the first FROM/],
    ['FROM without image', '\nFROM\n', /^Dockerfile:2: FROM needs an image$/],
    ['unknown flag', 'FROM --pull=always x', /^Dockerfile:1: FROM does not accept the flag '--pull=always'/],
    ['--platform without =', 'FROM --platform linux/amd64 x', /^Dockerfile:1: FROM --platform needs a value joined with '='/],
    ['bad AS clause', 'FROM x AS', /^Dockerfile:1: FROM takes an image and an optional 'AS <name>'/],
    ['extra words', 'FROM x AS y z', /FROM takes an image/],
    ['not AS', 'FROM x FOR y', /FROM takes an image/],
    ['bad stage name', 'FROM x AS 1stage', /'1stage' is not a valid stage name/],
    ['unset ARG makes it empty', 'ARG BASE\nFROM ${BASE}', /^Dockerfile:2: FROM \$\{BASE\} expands to an empty image name: ARG BASE has no value$/],
    ['undeclared ARG makes it empty', 'FROM $BASE', /expands to an empty image name: ARG BASE has no value/],
    [
      'unset ARG leaves an invalid tag',
      'ARG TAG\nFROM astrocrpublic.azurecr.io/runtime:${TAG}',
      /^Dockerfile:2: FROM names an invalid image 'astrocrpublic.azurecr.io\/runtime:' \(from 'astrocrpublic.azurecr.io\/runtime:\$\{TAG\}'\): .*ARG TAG has no value/,
    ],
    ['upper-case repository', 'FROM Quay.io/Astronomer/Astro-Runtime:12.5.0', /^Dockerfile:1: FROM names an invalid image .*lowercase/],
    ['unclosed brace', 'ARG A=1\nFROM ${A', /Dockerfile:2: missing '}'/],
    ['unsupported modifier', 'ARG A=1\nFROM ${A#x}', /the substitution modifier '#x'/],
    [':? on unset', 'ARG A\nFROM ${A:?required}', /^Dockerfile:2: A: required$/],
    ['? on unset', 'FROM ${A?}', /^Dockerfile:1: A: is not set$/],
    ['bad ARG name', 'ARG 1A=x\nFROM x', /^Dockerfile:1: '1A' is not a valid ARG name$/],
    ['empty ARG', 'ARG\nFROM x', /ARG needs a name/],
    ['unmatched quote', 'ARG A="x\nFROM x', /unmatched "/],
  ])('%s', (_name, content, message) => {
    let thrown: unknown;
    try {
      parseDockerfile(content);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DockerfileError);
    expect(thrown).toBeInstanceOf(UserError);
    expect((thrown as Error).message).toMatch(message);
  });

  it('uses the given path and says how to fix an unset ARG', () => {
    try {
      parseDockerfile('ARG BASE\nFROM ${BASE}', { path: 'proj/Dockerfile' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(DockerfileError);
      const dockerfileError = error as DockerfileError;
      expect(dockerfileError.path).toBe('proj/Dockerfile');
      expect(dockerfileError.line).toBe(2);
      expect(dockerfileError.message.startsWith('proj/Dockerfile:2:')).toBe(true);
      expect(dockerfileError.nextStep).toMatch(/--build-arg BASE=/);
    }
  });
});

describe('loadDockerfile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'astro-dockerfile-'));
    await writeFile(join(dir, 'Dockerfile'), 'ARG TAG=3.1-8\nFROM astrocrpublic.azurecr.io/runtime:${TAG}\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and parses a file with build args', async () => {
    const parsed = await loadDockerfile(join(dir, 'Dockerfile'), { buildArgs: { TAG: '3.1-9' }, displayPath: 'Dockerfile' });
    expect(parsed.path).toBe('Dockerfile');
    expect(parsed.base.image).toBe('astrocrpublic.azurecr.io/runtime:3.1-9');
  });

  it('turns a missing file into a UserError', async () => {
    await expect(loadDockerfile(join(dir, 'missing', 'Dockerfile'))).rejects.toThrow(UserError);
    await expect(loadDockerfile(join(dir, 'missing', 'Dockerfile'))).rejects.toThrow(/does not exist/);
  });
});
