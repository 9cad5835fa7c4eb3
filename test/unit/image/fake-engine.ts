/**
 * An in-memory ImageEngine for unit tests of the services' own logic (step naming, retries, classification,
 * cleanup). The integration tests run the same services against the real engine.
 */
import type { Readable } from 'node:stream';
import type { Builder, EngineBuildRequest, EngineInfo, EngineMessage, ImageDetails, ImageEngine, RegistryAuth } from '../../../src/image/engine.js';
import { EngineHttpError } from '../../../src/image/engine/transport.js';

export type PushScript = (attempt: number, auth: RegistryAuth) => EngineMessage[] | Error;

export class FakeEngine implements ImageEngine {
  readonly where = 'unix:///fake/docker.sock';

  readonly images = new Map<string, ImageDetails>();
  readonly calls: string[] = [];
  readonly pushAuths: RegistryAuth[] = [];
  buildMessages: EngineMessage[] = [];
  /** Bytes of the context the last build received. */
  contextBytes = 0;
  pushScript: PushScript = () => [{ aux: { Tag: 'x', Digest: 'sha256:' + 'a'.repeat(64), Size: 1 } }];
  removeError?: Error;
  /** The builder chooseBuilder gives when none is asked for (a real Docker engine's is BuildKit). */
  defaultBuilder: Builder = 'classic';
  /** Answers a BuildKit build with an HTTP error before any message, as an engine without BuildKit would. */
  refuseBuildkit = false;
  /** The builder of each build, in order. */
  readonly builders: (Builder | undefined)[] = [];

  async chooseBuilder(wanted?: Builder): Promise<Builder> {
    return wanted ?? this.defaultBuilder;
  }

  async ping(): Promise<EngineInfo> {
    this.calls.push('ping');
    return { apiVersion: '1.41', server: 'fake', kind: 'docker' };
  }

  async *build(request: EngineBuildRequest): AsyncGenerator<EngineMessage> {
    this.calls.push(`build ${request.tag}`);
    this.builders.push(request.builder);
    if (this.refuseBuildkit && request.builder === 'buildkit') throw new EngineHttpError(400, 'BuildKit is not enabled on this engine');
    this.contextBytes = await drain(request.context);
    for (const message of this.buildMessages) yield message;
    if (!this.buildMessages.some((m) => m.error !== undefined || m.errorDetail !== undefined)) {
      const built = image(request.tag, { ...request.labels });
      this.images.set(request.tag, built);
      // Like a real engine, the image is also found by the ID the build reported.
      const id = this.buildMessages.map((m) => (m.aux as { ID?: unknown } | undefined)?.ID).find((x) => typeof x === 'string');
      if (typeof id === 'string') this.images.set(id, { ...built, id });
    }
  }

  async inspect(ref: string): Promise<ImageDetails | undefined> {
    this.calls.push(`inspect ${ref}`);
    return this.images.get(ref);
  }

  async tag(source: string, target: string): Promise<void> {
    this.calls.push(`tag ${source} ${target}`);
    const found = this.images.get(source);
    if (!found) throw Object.assign(new Error(`No such image: ${source}`), { statusCode: 404 });
    this.images.set(target, found);
  }

  /** What sharesLoopback answers (a real engine on this machine's socket: true). */
  loopback = false;
  async sharesLoopback(): Promise<boolean> {
    return this.loopback;
  }

  /** Runs as a push starts, before its messages: what the engine would send to the registry. */
  onPush?: (ref: string, auth: RegistryAuth) => Promise<void>;

  async *push(ref: string, auth: RegistryAuth): AsyncGenerator<EngineMessage> {
    this.pushAuths.push(auth);
    const attempt = this.pushAuths.length;
    this.calls.push(`push ${ref}`);
    await this.onPush?.(ref, auth);
    const script = this.pushScript(attempt, auth);
    if (script instanceof Error) throw script;
    for (const message of script) yield message;
  }

  /** Held until released, when set: a removal that is still under way. */
  removeGate?: Promise<void>;
  async remove(ref: string): Promise<void> {
    this.calls.push(`remove ${ref}`);
    await this.removeGate;
    if (this.removeError) throw this.removeError;
    this.images.delete(ref);
    this.calls.push(`removed ${ref}`);
  }
  async createContainer(): Promise<never> {
    throw new Error('the fake engine runs no containers');
  }
}

export function image(tag: string, labels: Record<string, string> = {}, platform = { os: 'linux', architecture: 'amd64' }): ImageDetails {
  return { id: `sha256:${'b'.repeat(64)}`, ...platform, labels, env: {}, repoTags: [tag], repoDigests: [], size: 0 };
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}
