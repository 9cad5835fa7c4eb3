/** Small JSON files in astro's cache: reads validate (a corrupt or foreign file reads as absent), writes are atomic. */
import { randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type * as z from 'zod';

/** The file's text as `schema` describes it; undefined for anything else (not JSON, not that shape). */
function parseJsonText<T extends z.ZodType>(text: string, schema: T): z.infer<T> | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function readJsonFile<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T> | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  return parseJsonText(text, schema);
}

/** readJsonFile without waiting for the event loop: for a small file read before anything else can run. */
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
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(data));
  await fs.rename(tmp, file);
}
