// A warm astro process for bench/image.bench.ts: during `astro deploy` the CLI is already running when the image
// is built, so this measures the image services without Node's process start. Reads one line per run from stdin
// (`<projectDir> <localTag> <registryHost> <token> <socketPath>`) and answers `ok` or `error <message>`.
import readline from 'node:readline';
import { buildProjectImage } from '../../dist/image/build.js';
import { createDockerEngine } from '../../dist/image/engine.js';
import { pushImage } from '../../dist/image/push.js';

const lines = readline.createInterface({ input: process.stdin });
let run = 0;
for await (const line of lines) {
  const [projectDir, localTag, registryHost, token, socketPath] = line.split(' ');
  try {
    const engine = createDockerEngine({ socketPath });
    await buildProjectImage(engine, { projectDir, tag: localTag, labels: { 'io.astronomer.deploy.revision.description': 'bench' } });
    await pushImage(engine, {
      localRef: localTag,
      remoteRef: `${registryHost}/bench/airflow:warm-${process.pid}-${run++}`,
      auth: { username: 'cli', password: token, serveraddress: registryHost },
    });
    process.stdout.write('ok\n');
  } catch (error) {
    process.stdout.write(`error ${String(error?.message ?? error).replace(/\n/g, ' ')}\n`);
  }
}
