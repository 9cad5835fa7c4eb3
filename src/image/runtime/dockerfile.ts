/**
 * Reads a Dockerfile far enough to know which image each stage is built FROM, the way BuildKit reads it: parser
 * directives (`# escape=`), comments, line continuations, heredocs, global `ARG`s (defaults, `--build-arg`
 * overrides and the built-in platform arguments), `FROM [--platform=…] image [AS name]`, and references to earlier
 * stages. Nothing is executed and the user's file is never changed.
 */
import { readFile } from 'node:fs/promises';

import { UserError } from '../../errors.js';
import { tryParseImageReference, type ImageReference } from './reference.js';

export interface DockerfileStage {
  /** 0-based position among the FROM instructions. */
  index: number;
  /** 1-based line on which the FROM instruction starts. */
  line: number;
  /** The image word before ARG substitution, e.g. `${BASE}:${TAG}`. */
  imageAsWritten: string;
  /** The image word after ARG substitution. */
  image: string;
  /** Set when the stage is built on an external image (not `scratch`, not an earlier stage). */
  reference?: ImageReference;
  /** Name of the earlier stage this one is built on (`FROM builder`). */
  fromStage?: string;
  scratch: boolean;
  /** `--platform` after ARG substitution. */
  platform?: string;
  platformAsWritten?: string;
  /** `AS name`, lower-cased as BuildKit stores it. */
  name?: string;
}

export interface ParsedDockerfile {
  /** Path used in messages. */
  path: string;
  stages: DockerfileStage[];
  /** The first stage: what Astronomer's CLI reads as "the image in your Dockerfile". */
  base: DockerfileStage;
  /** The stage whose external image the final (deployed) stage is built on, following `FROM <stage>` links. */
  finalBase: DockerfileStage;
  /** ARGs declared before the first FROM with their effective values (undefined = declared without a value). */
  globalArgs: Record<string, string | undefined>;
  /** Parser directives found at the top of the file (keys lower-cased). */
  directives: Record<string, string>;
}

export interface ParseDockerfileOptions {
  /** Shown in messages; defaults to `Dockerfile`. */
  path?: string;
  /** `--build-arg` values; they override the defaults of ARGs declared before the first FROM. */
  buildArgs?: Readonly<Record<string, string>>;
  /**
   * Arguments BuildKit predefines for FROM lines (TARGETPLATFORM, BUILDARCH, …). Defaults describe a linux/amd64
   * build, which is what a deploy produces.
   */
  builtinArgs?: Readonly<Record<string, string>>;
}

export class DockerfileError extends UserError {
  override readonly kind: string = 'dockerfile';
  readonly path: string;
  readonly line: number | undefined;

  constructor(path: string, line: number | undefined, problem: string, nextStep?: string) {
    super(`${path}${line === undefined ? '' : `:${line}`}: ${problem}`, nextStep === undefined ? {} : { nextStep });
    this.path = path;
    this.line = line;
  }
}

export const amd64BuiltinArgs: Readonly<Record<string, string>> = {
  TARGETPLATFORM: 'linux/amd64',
  TARGETOS: 'linux',
  TARGETARCH: 'amd64',
  TARGETVARIANT: '',
  BUILDPLATFORM: 'linux/amd64',
  BUILDOS: 'linux',
  BUILDARCH: 'amd64',
  BUILDVARIANT: '',
};

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

const directivePattern = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$/;
const heredocPattern = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;
const heredocInstructions = new Set(['RUN', 'COPY', 'ADD']);
const stageNamePattern = /^[a-z][a-z0-9._-]*$/;

function readDirectives(lines: string[], path: string): { directives: Record<string, string>; bodyStart: number } {
  const directives: Record<string, string> = {};
  let index = 0;
  for (; index < lines.length; index++) {
    const match = directivePattern.exec(lines[index] as string);
    if (!match) break;
    const key = (match[1] as string).toLowerCase();
    if (key in directives) throw new DockerfileError(path, index + 1, `the parser directive '${key}' is given twice`);
    directives[key] = match[2] as string;
  }
  return { directives, bodyStart: index };
}

function escapeTokenOf(directives: Record<string, string>, path: string): string {
  const escape = directives.escape ?? '\\';
  if (escape !== '\\' && escape !== '`') {
    throw new DockerfileError(path, undefined, `invalid escape directive '${escape}': it must be \\ or \``);
  }
  return escape;
}

/** Joins continued lines into instructions, skipping comments, blank lines and heredoc bodies. */
function splitInstructions(lines: string[], bodyStart: number, escape: string): Instruction[] {
  const instructions: Instruction[] = [];
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  let index = bodyStart;
  while (index < lines.length) {
    const first = lines[index] as string;
    if (first.trim() === '' || first.trimStart().startsWith('#')) {
      index++;
      continue;
    }
    const startLine = index + 1;
    let text = '';
    let current = first;
    for (;;) {
      if (continuation.test(current)) {
        text += current.replace(continuation, '');
        index++;
        // Comment and blank lines inside a continued instruction are dropped, as BuildKit does.
        while (index < lines.length && ((lines[index] as string).trim() === '' || (lines[index] as string).trimStart().startsWith('#'))) index++;
        if (index >= lines.length) break;
        current = lines[index] as string;
        continue;
      }
      text += current;
      index++;
      break;
    }
    const match = /^\s*(\S+)\s*([\s\S]*)$/.exec(text);
    if (!match) continue;
    const keyword = (match[1] as string).toUpperCase();
    const args = (match[2] as string).trim();
    instructions.push({ keyword, args, line: startLine });

    if (heredocInstructions.has(keyword)) {
      for (const heredoc of args.matchAll(heredocPattern)) {
        const stripTabs = heredoc[1] === '-';
        const terminator = heredoc[3] as string;
        while (index < lines.length) {
          const body = lines[index] as string;
          index++;
          if ((stripTabs ? body.replace(/^\t+/, '') : body) === terminator) break;
        }
      }
    }
  }
  return instructions;
}

/** Splits on whitespace, keeping quoted runs together (quotes stay in the word for the expander to remove). */
function splitQuotedWords(text: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === escape && i + 1 < text.length && quote !== "'") {
      word += ch + (text[i + 1] as string);
      i++;
      inWord = true;
      continue;
    }
    if (quote) {
      if (ch === quote) quote = undefined;
      word += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      word += ch;
      inWord = true;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    word += ch;
    inWord = true;
  }
  if (inWord) words.push(word);
  return words;
}

interface Expansion {
  value: string;
  /** Variables referenced without a value. */
  unset: string[];
}

class ExpansionError extends Error {}

/** Shell-style word expansion as BuildKit applies it: quotes, escapes, $VAR and ${VAR[:-|-|:+|+|:?|?]word}. */
function expandWord(word: string, scope: ReadonlyMap<string, string | undefined>, escape: string): Expansion {
  const unset = new Set<string>();
  let position = 0;

  const lookup = (name: string): string | undefined => {
    const value = scope.get(name);
    if (value === undefined) unset.add(name);
    return value;
  };

  const readName = (): string => {
    const match = /^[A-Za-z0-9_]+/.exec(word.slice(position));
    if (!match) return '';
    position += match[0].length;
    return match[0];
  };

  const expandDollar = (): string => {
    position++; // the '$'
    if (word[position] !== '{') {
      const name = readName();
      return name === '' ? '$' : (lookup(name) ?? '');
    }
    position++; // the '{'
    const name = readName();
    if (name === '') throw new ExpansionError(`'\${' must be followed by a variable name in '${word}'`);
    if (position >= word.length) throw new ExpansionError(`missing '}' in '${word}'`);
    if (word[position] === '}') {
      position++;
      return lookup(name) ?? '';
    }
    const modifier = /^(:-|-|:\+|\+|:\?|\?)/.exec(word.slice(position));
    if (!modifier) {
      const found = word.slice(position, position + 2);
      throw new ExpansionError(`the substitution modifier '${found}' in '${word}' is not supported here; use :-, -, :+, +, :? or ?`);
    }
    position += (modifier[0] as string).length;
    const alternative = expandUntil('}');
    if (word[position] !== '}') throw new ExpansionError(`missing '}' in '${word}'`);
    position++;
    const value = scope.get(name);
    switch (modifier[0]) {
      case ':-':
        return value === undefined || value === '' ? alternative : value;
      case '-':
        return value === undefined ? alternative : value;
      case ':+':
        return value === undefined || value === '' ? '' : alternative;
      case '+':
        return value === undefined ? '' : alternative;
      case ':?':
      case '?':
        if (value === undefined || (modifier[0] === ':?' && value === '')) {
          throw new ExpansionError(`${name}: ${alternative === '' ? 'is not set' : alternative}`);
        }
        return value;
      default:
        return value ?? '';
    }
  };

  const expandUntil = (stop: string | undefined): string => {
    let out = '';
    while (position < word.length) {
      const ch = word[position] as string;
      if (stop !== undefined && ch === stop) return out;
      if (ch === escape) {
        position++;
        if (position < word.length) out += word[position] as string;
        position++;
        continue;
      }
      if (ch === "'") {
        const end = word.indexOf("'", position + 1);
        if (end === -1) throw new ExpansionError(`unmatched ' in '${word}'`);
        out += word.slice(position + 1, end);
        position = end + 1;
        continue;
      }
      if (ch === '"') {
        position++;
        while (position < word.length && word[position] !== '"') {
          const inner = word[position] as string;
          if (inner === escape && position + 1 < word.length && ['"', '$', escape].includes(word[position + 1] as string)) {
            out += word[position + 1] as string;
            position += 2;
          } else if (inner === '$') {
            out += expandDollar();
          } else {
            out += inner;
            position++;
          }
        }
        if (position >= word.length) throw new ExpansionError(`unmatched " in '${word}'`);
        position++;
        continue;
      }
      if (ch === '$') {
        out += expandDollar();
        continue;
      }
      out += ch;
      position++;
    }
    return out;
  };

  const value = expandUntil(undefined);
  return { value, unset: [...unset] };
}

function describeUnset(names: string[]): string {
  return names.map((name) => `ARG ${name}`).join(', ');
}

function expandOrFail(word: string, scope: ReadonlyMap<string, string | undefined>, escape: string, path: string, line: number): Expansion {
  try {
    return expandWord(word, scope, escape);
  } catch (error) {
    if (error instanceof ExpansionError) throw new DockerfileError(path, line, error.message);
    throw error;
  }
}

/** `ARG a=1 b` declares two arguments; values are expanded with the arguments declared so far. */
function declareArgs(
  instruction: Instruction,
  scope: Map<string, string | undefined>,
  declared: Record<string, string | undefined>,
  buildArgs: Readonly<Record<string, string>>,
  escape: string,
  path: string,
): void {
  const words = splitQuotedWords(instruction.args, escape);
  if (words.length === 0) throw new DockerfileError(path, instruction.line, 'ARG needs a name, e.g. ARG RUNTIME_VERSION=3.1-8');
  for (const word of words) {
    const equals = word.indexOf('=');
    const name = equals === -1 ? word : word.slice(0, equals);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new DockerfileError(path, instruction.line, `'${name}' is not a valid ARG name`);
    }
    let value: string | undefined;
    if (Object.hasOwn(buildArgs, name)) {
      value = buildArgs[name];
    } else if (equals !== -1) {
      value = expandOrFail(word.slice(equals + 1), scope, escape, path, instruction.line).value;
    } else if (scope.has(name)) {
      // A bare re-declaration of a built-in argument keeps its value.
      value = scope.get(name);
    }
    scope.set(name, value);
    declared[name] = value;
  }
}

function parseFrom(
  instruction: Instruction,
  index: number,
  scope: ReadonlyMap<string, string | undefined>,
  stageNames: ReadonlySet<string>,
  escape: string,
  path: string,
): DockerfileStage {
  const { line } = instruction;
  const words = instruction.args.split(/\s+/).filter((w) => w !== '');
  let platformAsWritten: string | undefined;
  while (words.length > 0 && (words[0] as string).startsWith('--')) {
    const flag = words.shift() as string;
    const match = /^--platform=(.*)$/.exec(flag);
    if (match) {
      platformAsWritten = match[1] as string;
      continue;
    }
    if (flag === '--platform') {
      throw new DockerfileError(path, line, "FROM --platform needs a value joined with '='", 'Write it as FROM --platform=linux/amd64 <image>.');
    }
    throw new DockerfileError(path, line, `FROM does not accept the flag '${flag}'; only --platform=<platform> is allowed`);
  }
  const [imageAsWritten, asKeyword, stageName, ...extra] = words;
  if (imageAsWritten === undefined) {
    throw new DockerfileError(path, line, 'FROM needs an image', 'For example: FROM astrocrpublic.azurecr.io/runtime:3.1-8');
  }
  if (asKeyword !== undefined && (asKeyword.toLowerCase() !== 'as' || stageName === undefined || extra.length > 0)) {
    throw new DockerfileError(path, line, `FROM takes an image and an optional 'AS <name>', got '${instruction.args}'`);
  }
  let name: string | undefined;
  if (stageName !== undefined) {
    name = stageName.toLowerCase();
    if (!stageNamePattern.test(name)) throw new DockerfileError(path, line, `'${stageName}' is not a valid stage name`);
  }

  const expansion = expandOrFail(imageAsWritten, scope, escape, path, line);
  const image = expansion.value;
  const stage: DockerfileStage = { index, line, imageAsWritten, image, scratch: false };
  if (name !== undefined) stage.name = name;
  if (platformAsWritten !== undefined) {
    stage.platformAsWritten = platformAsWritten;
    const platform = expandOrFail(platformAsWritten, scope, escape, path, line).value;
    if (platform !== '') stage.platform = platform;
  }

  if (image === '') {
    const unset = expansion.unset.length > 0 ? `: ${describeUnset(expansion.unset)} has no value` : '';
    throw new DockerfileError(
      path,
      line,
      `FROM ${imageAsWritten} expands to an empty image name${unset}`,
      expansion.unset.length > 0
        ? `Give ${expansion.unset[0]} a default before the first FROM (ARG ${expansion.unset[0]}=…) or pass --build-arg ${expansion.unset[0]}=….`
        : undefined,
    );
  }
  if (image === 'scratch') {
    stage.scratch = true;
    return stage;
  }
  if (stageNames.has(image.toLowerCase())) {
    stage.fromStage = image.toLowerCase();
    return stage;
  }
  const parsed = tryParseImageReference(image);
  if (!parsed.ok) {
    const expandedNote = image === imageAsWritten ? '' : ` (from '${imageAsWritten}')`;
    const unset = expansion.unset.length > 0 ? `; ${describeUnset(expansion.unset)} has no value` : '';
    throw new DockerfileError(
      path,
      line,
      `FROM names an invalid image '${image}'${expandedNote}: ${parsed.reason}${unset}`,
      expansion.unset.length > 0 ? `Give ${expansion.unset[0]} a default before the first FROM or pass --build-arg ${expansion.unset[0]}=….` : undefined,
    );
  }
  stage.reference = parsed.reference;
  return stage;
}

/** Parses Dockerfile text. Throws {@link DockerfileError} (a UserError naming the file and line) when it cannot. */
export function parseDockerfile(content: string, options: ParseDockerfileOptions = {}): ParsedDockerfile {
  const path = options.path ?? 'Dockerfile';
  const buildArgs = options.buildArgs ?? {};
  const lines = content.replace(/^\uFEFF/, '').split(/\r?\n|\r/);
  const { directives, bodyStart } = readDirectives(lines, path);
  const escape = escapeTokenOf(directives, path);
  const instructions = splitInstructions(lines, bodyStart, escape);

  // BuildKit predefines the platform arguments for FROM lines; declared global ARGs take precedence.
  const scope = new Map<string, string | undefined>(Object.entries(options.builtinArgs ?? amd64BuiltinArgs));
  const globalArgs: Record<string, string | undefined> = {};
  const stages: DockerfileStage[] = [];
  const stageNames = new Set<string>();

  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const stage = parseFrom(instruction, stages.length, scope, stageNames, escape, path);
      stages.push(stage);
      if (stage.name !== undefined) stageNames.add(stage.name);
      continue;
    }
    if (stages.length === 0) {
      if (instruction.keyword === 'ARG') {
        declareArgs(instruction, scope, globalArgs, buildArgs, escape, path);
        continue;
      }
      throw new DockerfileError(path, instruction.line, `${instruction.keyword} comes before the first FROM; only ARG and comments may come before FROM`);
    }
  }

  const base = stages[0];
  if (base === undefined) {
    throw new DockerfileError(path, undefined, 'no FROM instruction found', 'Start the Dockerfile with FROM astrocrpublic.azurecr.io/runtime:<version>.');
  }
  let finalBase = stages[stages.length - 1] as DockerfileStage;
  const seen = new Set<number>();
  while (finalBase.fromStage !== undefined && !seen.has(finalBase.index)) {
    seen.add(finalBase.index);
    const parentName = finalBase.fromStage;
    // The parent is the last stage with that name declared before this one.
    const parent = stages
      .slice(0, finalBase.index)
      .reverse()
      .find((stage) => stage.name === parentName);
    if (parent === undefined) break;
    finalBase = parent;
  }
  return { path, stages, base, finalBase, globalArgs, directives };
}

/** Reads and parses a Dockerfile from disk; a missing or unreadable file is a UserError. */
export async function loadDockerfile(path: string, options: Omit<ParseDockerfileOptions, 'path'> & { displayPath?: string } = {}): Promise<ParsedDockerfile> {
  const displayPath = options.displayPath ?? path;
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`;
    throw new UserError(`The Dockerfile ${displayPath} ${reason}.`, {
      nextStep: 'Run this command from your Astro project directory, or run astro dev init to create a project.',
      cause: error,
    });
  }
  return parseDockerfile(content, { ...options, path: displayPath });
}
