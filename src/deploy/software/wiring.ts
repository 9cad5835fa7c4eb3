/**
 * The real ports behind `astro deploy` on Astronomer Software: Houston over graphql-request, the user's Docker
 * credentials, the DAG server, and the same engine / parse / bundle adapters the Astro deploy uses.
 */
import path from 'node:path';
import { createHoustonClient } from '../../platform/software/houston.js';
import { createSoftwareDeployApi } from '../../platform/software/deploy-api.js';
import { createLocalPorts, type LocalWiringInput } from '../kernel/wiring.js';
import type { SoftwareDeployPorts } from './deploy.js';

export type SoftwareWiringInput = LocalWiringInput & {
  houstonUrl: string;
  /** The raw Houston token of the context. */
  token: string;
};

export function createSoftwarePorts(input: SoftwareWiringInput): SoftwareDeployPorts {
  const { env, out, signal, emit, token } = input;
  const local = createLocalPorts(input);
  const houston = createSoftwareDeployApi(
    createHoustonClient({
      url: input.houstonUrl,
      token,
      onRetry: ({ attempt, delayMs, reason }) => out.debug(`Houston: ${reason}; retry ${attempt} in ${delayMs} ms`),
    }),
  );

  return {
    ...local,
    houston,
    token,

    dockerCredentials: async (host) => {
      const { readDockerCredentials, runCredentialHelper } = await import('../../image/docker-credentials.js');
      const credentials = await readDockerCredentials({
        configDir: env.dockerConfigDir,
        host,
        runHelper: runCredentialHelper(env.raw),
        signal,
      });
      if (credentials) {
        out.addSecret(credentials.password);
        out.addSecret(credentials.identityToken);
        out.debug(`Registry credentials for ${host} from ${credentials.source}`);
      }
      return credentials;
    },

    uploadDags: async ({ url, data, description }) => {
      const { uploadToDagServer } = await import('../../bundle/dagserver.js');
      return uploadToDagServer({
        url,
        token,
        data,
        description,
        signal,
        onProgress: (e) => {
          if (e.type === 'attempt')
            emit({ type: 'progress', phase: 'upload', message: `please wait, attempting to upload the dags (attempt ${e.attempt} of ${e.maxAttempts})` });
          if (e.type === 'retry') emit({ type: 'warning', message: `DAG upload failed (${e.reason}); retrying in ${e.delayMs / 1000}s` });
        },
      });
    },

    dockerfileTag: async (projectDir) => {
      const { loadDockerfile } = await import('../../image/runtime/dockerfile.js');
      const parsed = await loadDockerfile(path.join(projectDir, 'Dockerfile'), { displayPath: 'Dockerfile' }).catch(() => undefined);
      return parsed?.base.reference?.tag;
    },
  };
}
