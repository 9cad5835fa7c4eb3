// The candidate of bench/image.bench.ts: one build + push through astro's image services, as `astro deploy` runs
// them (compiled code from dist/, so start-up costs what the real CLI costs).
// Usage: node bench/scripts/build-push.mjs <projectDir> <localTag> <registryHost> <token> <socketPath>
import { buildProjectImage } from '../../dist/image/build.js';
import { createDockerEngine } from '../../dist/image/engine.js';
import { pushImage } from '../../dist/image/push.js';

const [projectDir, localTag, registryHost, token, socketPath] = process.argv.slice(2);
const engine = createDockerEngine({ socketPath });
await buildProjectImage(engine, { projectDir, tag: localTag, labels: { 'io.astronomer.deploy.revision.description': 'bench' } });
const tag = `${Date.now()}-${process.pid}`;
await pushImage(engine, {
  localRef: localTag,
  remoteRef: `${registryHost}/bench/airflow:${tag}`,
  auth: { username: 'cli', password: token, serveraddress: registryHost },
});
