/** Small JSON files in astro's cache: reads validate (a corrupt or foreign file reads as absent), writes are atomic. */
import { createHash, randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type * as z from 'zod';
import { CHECKED_ONCE } from './checked-once.js';

/** The file's text as `schema` describes it; undefined for anything else (not JSON, not that shape). */
function parseJsonText<T extends z.ZodType>(text: string, schema: T): z.infer<T> | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(text), CHECKED_ONCE);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function readJsonFile<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T> | undefined> {
  return readJsonFileSync(file, schema);
}

/**
 * readJsonFile without waiting for the event loop. The files are small (a cache, remembered origins): read at once,
 * they cost no trip through libuv's threads and no node:fs/promises.
 */
export function readJsonFileSync<T extends z.ZodType>(file: string, schema: T): z.infer<T> | undefined {
  let text: string;
  try {
    text = fsSync.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return parseJsonText(text, schema);
}

export async function writeJsonFileAtomic(file: string, data: unknown): Promise<void> {
  await writeTextFileAtomic(file, JSON.stringify(data));
}

/**
 * Sets `key` to `value` in a small JSON object file that remembers a guess per key (where a request went, what a
 * registry answered), unless it already holds an equal one (`same`). Beyond `max` keys the file starts again. Never
 * fails: a guess that cannot be written is only not remembered.
 */
export async function rememberInFile<T>(
  file: string,
  schema: z.ZodType<Record<string, T>>,
  key: string,
  value: T,
  options: { max: number; same?: (a: T, b: T) => boolean },
): Promise<void> {
  const known = (await readJsonFile(file, schema)) ?? {};
  const before = known[key];
  if (before !== undefined && (options.same ?? Object.is)(before, value)) return;
  const next = Object.keys(known).length >= options.max ? {} : known;
  next[key] = value;
  await writeJsonFileAtomic(file, next).catch(() => undefined);
}

async function writeTextFileAtomic(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

/*
 * Sealed files: for a large file astro writes and reads back on a hot path (the parse cache's state: zod validating
 * its 140 KB took 6-9 ms of a 75 ms warm parse). The first line is a seal, sha256 of `schemaKey` and the JSON text
 * below it; `schemaKey` names the schema the writer's data had (the caller derives it from the schema itself, and a
 * test holds it to that). A file whose seal matches is byte for byte what a writer of the same schema wrote from
 * data of that type, so it is not validated again; any other file (edited, truncated, from another build, or without
 * a seal) is validated by `schema` as readJsonFile does. Hashing 140 KB takes about 0.3 ms.
 */
const SEAL_PREFIX = 'astro-seal:';

function seal(schemaKey: string, body: string): string {
  return createHash('sha256').update(schemaKey).update('\0').update(body).digest('hex');
}

export async function writeSealedJsonFileAtomic(file: string, data: unknown, schemaKey: string): Promise<void> {
  const body = JSON.stringify(data);
  await writeTextFileAtomic(file, `${SEAL_PREFIX}${seal(schemaKey, body)}\n${body}`);
}

export async function readSealedJsonFile<T extends z.ZodType>(file: string, schema: T, schemaKey: string): Promise<z.infer<T> | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const newline = text.indexOf('\n');
  if (!text.startsWith(SEAL_PREFIX) || newline < 0) return parseJsonText(text, schema);
  const body = text.slice(newline + 1);
  if (text.slice(SEAL_PREFIX.length, newline) !== seal(schemaKey, body)) return parseJsonText(body, schema);
  try {
    return JSON.parse(body) as z.infer<T>;
  } catch {
    return undefined;
  }
}
