/** What makes a directory an Astro project, as Astronomer's CLI decides it: `.astro/config.yaml`, not the home. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';

export const NOT_AN_ASTRO_PROJECT =
  'this is not an Astro project directory.\nChange to another directory or run astro dev init to turn your working directory into an Astro project';

export async function isAstroProject(dir: string, homeDir: string = os.homedir()): Promise<boolean> {
  if (path.resolve(dir) === path.resolve(homeDir)) return false;
  return fs.stat(path.join(dir, '.astro', 'config.yaml')).then(
    (stat) => stat.isFile(),
    () => false,
  );
}

export async function assertAstroProject(dir: string, homeDir?: string): Promise<void> {
  if (!(await isAstroProject(dir, homeDir))) throw new UserError(NOT_AN_ASTRO_PROJECT);
}
