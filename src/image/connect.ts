/**
 * The one place that turns the user's Docker setup into the one Docker client: which engine (and why), connected
 * and checked. Every command that needs an engine (deploy, dev parse and pytest in an image) comes here.
 */
import type { AstroEnv } from '../env.js';
import { createDockerEngine, type EngineEndpoint, type ImageEngine } from './engine.js';
import {
  describeEngineError,
  describeEngineTarget,
  resolveEngineTarget,
  socketPathOf,
  tcpAddressOf,
  type EngineEnvironment,
  type EngineTarget,
} from './engine-target.js';
import { nodeEngineFs, pingUnixSocket } from './engine-target-node.js';

export interface EngineChoice {
  target: EngineTarget;
  endpoint: EngineEndpoint;
}

const ENGINE_VARIABLES = [
  'DOCKER_HOST',
  'DOCKER_CONTEXT',
  'DOCKER_CONFIG',
  'DOCKER_TLS_VERIFY',
  'DOCKER_CERT_PATH',
  'HOME',
  'USER',
  'SSH_AUTH_SOCK',
  'XDG_RUNTIME_DIR',
] as const;

/** The endpoint the one client connects to, for a resolved target. */
export function endpointOf(target: EngineTarget): EngineEndpoint {
  switch (target.transport) {
    case 'unix':
      return { kind: 'unix', socketPath: socketPathOf(target) };
    case 'tcp': {
      const { host, port } = tcpAddressOf(target);
      const tls = target.tls;
      return {
        kind: 'tcp',
        host,
        port,
        ...(tls ? { tls: { verify: tls.verify, ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}) } } : {}),
      };
    }
    case 'ssh': {
      const ssh = target.ssh!;
      return { kind: 'ssh', host: ssh.host, port: ssh.port, user: ssh.user, identityFiles: ssh.identityFiles, knownHostsFiles: ssh.knownHostsFiles };
    }
  }
}

/**
 * Docker's order: DOCKER_HOST, DOCKER_CONTEXT, currentContext, the default socket; `container.binary: podman`
 * (the config value, passed in) for Podman's socket.
 */
export async function chooseEngine(env: Pick<AstroEnv, 'raw'>, containerBinary?: string): Promise<EngineChoice> {
  const engineEnv: EngineEnvironment = {};
  for (const name of ENGINE_VARIABLES) {
    const value = env.raw[name];
    if (value !== undefined) engineEnv[name] = value;
  }
  const target = await resolveEngineTarget({
    env: engineEnv,
    ...(containerBinary ? { containerBinary } : {}),
    fs: nodeEngineFs,
    probe: pingUnixSocket(),
    ...(process.getuid ? { uid: process.getuid() } : {}),
  });
  return { target, endpoint: endpointOf(target) };
}

/** The one client for a resolved target; its errors name the engine and why it was chosen. */
export function engineFor(target: EngineTarget): ImageEngine {
  return createDockerEngine(endpointOf(target), { reason: target.reason, describeFailure: (cause) => describeEngineError(target, cause) });
}

/** The engine the user's setup names, answering (ping) before it is handed out. */
export async function connectEngine(
  env: Pick<AstroEnv, 'raw'>,
  options: { containerBinary?: string; signal?: AbortSignal; debug?: (message: string) => void } = {},
): Promise<ImageEngine> {
  const { target } = await chooseEngine(env, options.containerBinary);
  options.debug?.(describeEngineTarget(target));
  const engine = engineFor(target);
  const info = await engine.ping(options.signal);
  if (info.kind !== target.kind) options.debug?.(`The engine at ${target.endpoint} says it is ${info.kind === 'podman' ? 'Podman' : 'Docker'}.`);
  return engine;
}
