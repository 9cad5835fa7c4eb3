/**
 * The one place that turns the user's Docker setup into the one Docker client: which engine (and why), connected
 * and checked. Every command that needs an engine (deploy, dev parse and pytest in an image) comes here.
 */
import type { AstroEnv } from '../env.js';
import { createDockerEngine, type EngineEndpoint, type ImageEngine } from './engine.js';

export interface EngineChoice {
  endpoint: EngineEndpoint;
  /** Why this engine: "DOCKER_HOST", "default socket", … (said with --verbose). */
  reason: string;
}

export function chooseEngine(env: Pick<AstroEnv, 'dockerSocket'>): EngineChoice {
  return { endpoint: { kind: 'unix', socketPath: env.dockerSocket }, reason: 'default socket' };
}

/** The engine the user's setup names, answering (ping) before it is handed out. */
export async function connectEngine(env: Pick<AstroEnv, 'dockerSocket'>, options: { signal?: AbortSignal; debug?: (message: string) => void } = {}): Promise<ImageEngine> {
  const choice = chooseEngine(env);
  const engine = createDockerEngine(choice.endpoint);
  options.debug?.(`Docker engine: ${engine.where} (${choice.reason})`);
  await engine.ping(options.signal);
  return engine;
}
