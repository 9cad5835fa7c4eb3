// Runs Azurite behind the versioning proxy in its own process (the bench times commands with spawnSync, which would
// block a proxy living in the bench process). Prints one JSON line {sasUrl} and serves until stdin closes or SIGTERM.
import { startBlobStack } from '../../test/integration/bundle/blob-stack.js';

const stack = await startBlobStack();
await stack.createContainer('bench');
process.stdout.write(`${JSON.stringify({ sasUrl: stack.sasUrl('bench', 'dags.tar.gz', { expiresInSeconds: 3600 }), proxyUrl: stack.proxyUrl })}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await stack.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.resume();
