/**
 * Runs one project build in its own process so a test can interrupt it with a real SIGINT, as a user would.
 * Usage: node --import tsx build-child.ts <projectDir> <tag> <socketPath>
 * Prints each progress event as a JSON line; exits with the error's exit code (130 for SIGINT).
 */
import { isAstroError, InterruptedError } from '../../../src/errors.js';
import { buildProjectImage } from '../../../src/image/build.js';
import { createDockerEngine } from '../../../src/image/engine.js';

const [projectDir, tag, socketPath] = process.argv.slice(2);
if (!projectDir || !tag || !socketPath) throw new Error('usage: build-child.ts <projectDir> <tag> <socketPath>');

const controller = new AbortController();
process.once('SIGINT', () => controller.abort(new InterruptedError('SIGINT')));

try {
  await buildProjectImage(createDockerEngine({ socketPath }), {
    projectDir,
    tag,
    excludeDags: true,
    signal: controller.signal,
    onProgress: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
  });
  process.stdout.write(`${JSON.stringify({ type: 'finished' })}\n`);
} catch (error) {
  const kind = isAstroError(error) ? error.kind : 'unexpected';
  process.stdout.write(`${JSON.stringify({ type: 'failed', kind, message: (error as Error).message })}\n`);
  process.exitCode = isAstroError(error) ? error.exitCode : 1;
}
