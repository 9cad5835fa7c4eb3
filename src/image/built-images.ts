/**
 * The images this machine built for deploys, by the labels a deploy build gives them: the image-inputs digest (the
 * build context after .dockerignore, whether DAGs are left out, the base image as the engine has it, build args and
 * secret ids: deploy/kernel/digest.ts), with the description and the commit. Built again with the same labels from a
 * single-stage Dockerfile, the engine would make that image from its cache, so a deploy whose labels are remembered
 * takes the image instead of sending the build (deploy/kernel/wiring.ts), once checked: it still exists, is
 * linux/amd64 and carries exactly these labels. Kept in a small JSON file in astro's cache; never a credential.
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { readJsonFile, rememberInFile } from '../util/json-file.js';
import { COMMIT_LABEL, DESCRIPTION_LABEL, IMAGE_INPUTS_LABEL, SKIP_REVISION_LABEL } from './labels.js';
import { SHA256_DIGEST } from './registry.js';

/** Builds remembered at most; beyond it the file starts again. */
const MAX_REMEMBERED = 20;

/** The labels of astro's deploy builds: a remembered image must have each exactly as the build would set it, or not at all. */
const DEPLOY_LABELS = [IMAGE_INPUTS_LABEL, DESCRIPTION_LABEL, COMMIT_LABEL, SKIP_REVISION_LABEL];

const builds = z.record(z.string(), z.string().regex(SHA256_DIGEST));

/** The key a build is remembered under: its labels, in order; none without an image-inputs digest to stand on. */
function keyOf(labels: Readonly<Record<string, string>>): string | undefined {
  if (labels[IMAGE_INPUTS_LABEL] === undefined) return undefined;
  const sorted = Object.keys(labels)
    .sort()
    .map((name) => [name, labels[name]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

/** Whether an image's labels are what a deploy build with `labels` would give it (other labels, e.g. the base image's, aside). */
export function hasBuildLabels(image: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  const names = new Set([...Object.keys(labels), ...DEPLOY_LABELS]);
  return [...names].every((name) => image[name] === labels[name]);
}

export interface RememberedBuilds {
  /** The id of the image built with `labels`, if remembered (never fails; nothing without an image-inputs digest). */
  find(labels: Readonly<Record<string, string>>): Promise<string | undefined>;
  /** Remembers that a build with `labels` made `imageId`. Never fails. */
  remember(labels: Readonly<Record<string, string>>, imageId: string): Promise<void>;
}

export function rememberedBuilds(file: string): RememberedBuilds {
  return {
    find: async (labels) => {
      const key = keyOf(labels);
      return key === undefined ? undefined : (await readJsonFile(file, builds))?.[key];
    },
    remember: async (labels, imageId) => {
      const key = keyOf(labels);
      if (key === undefined || !SHA256_DIGEST.test(imageId)) return;
      await rememberInFile(file, builds, key, imageId, { max: MAX_REMEMBERED });
    },
  };
}
