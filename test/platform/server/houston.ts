/**
 * Houston, the Astronomer Software control plane: GraphQL at `POST /v1` (real graphql-js execution, so any
 * selection set the CLI sends works and unknown fields fail the way they do on a real server), and the per-Deployment
 * DAG server at `POST /<releaseName>/dags/upload`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import busboy from 'busboy';
import { buildSchema, execute, GraphQLError, GraphQLScalarType, Kind, parse, validate, type DocumentNode } from 'graphql';
import { checkDagBundle } from '../bundle-check.js';
import type { Platform } from '../platform.js';
import type { SeedSoftwareDeployment } from '../seed.js';
import type { HoustonPrincipal } from '../tokens.js';
import { HttpError, sendHtml, sendJson, type RequestContext, type Router } from './http.js';
import { escapeHtml } from './rest.js';

export const permissionDenied = 'You do not have the appropriate permissions for that';

const schema = buildSchema(readFileSync(fileURLToPath(new URL('./houston.graphql', import.meta.url)), 'utf8'));

// SDL-built scalars accept anything; ids and timestamps must at least be strings, as on the real server.
for (const name of ['Uuid', 'DateTime']) {
  const scalar = schema.getType(name) as GraphQLScalarType;
  const check = (value: unknown) => {
    if (typeof value !== 'string' || value === '') throw new GraphQLError(`${name} cannot represent a non-string value: ${JSON.stringify(value)}`);
    return value;
  };
  Object.assign(scalar, {
    parseValue: check,
    parseLiteral: (ast: { kind: string; value?: unknown }) => {
      if (ast.kind !== Kind.STRING) throw new GraphQLError(`${name} cannot represent a non-string value`);
      return check(ast.value);
    },
  });
}

interface HoustonContext {
  principal?: HoustonPrincipal;
}

function denied(): GraphQLError {
  return new GraphQLError(permissionDenied, { extensions: { code: 'FORBIDDEN' } });
}

function requirePrincipal(ctx: HoustonContext): HoustonPrincipal {
  if (!ctx.principal) throw denied();
  return ctx.principal;
}

function userError(message: string, code = 'BAD_USER_INPUT'): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

export function createHoustonResolvers(platform: Platform) {
  const seed = platform.seed;
  const software = seed.software;

  const userObject = (id: string) => {
    const u = platform.user(id);
    if (!u) return null;
    return {
      id: u.id,
      fullName: u.name,
      username: u.email,
      status: 'active',
      emails: [{ address: u.email, verified: true, primary: true }],
      createdAt: u.createdAt,
      updatedAt: u.createdAt,
    };
  };

  const workspaceObject = (id: string): Record<string, unknown> | null => {
    const ws = software.workspaces.find((w) => w.id === id);
    if (!ws) return null;
    const members = seed.users.filter((u) => u.softwareWorkspaceIds.includes(ws.id));
    const serviceAccounts = software.serviceAccounts.filter((s) => s.workspaceId === ws.id);
    return {
      id: ws.id,
      label: ws.label,
      description: ws.description,
      active: true,
      createdAt: ws.createdAt,
      updatedAt: ws.createdAt,
      deploymentCount: software.deployments.filter((d) => d.workspaceId === ws.id).length,
      users: () => members.map((u) => userObject(u.id)),
      roleBindings: () => [
        ...members.map((u) => ({ id: `rb-${ws.id}-${u.id}`, role: 'WORKSPACE_ADMIN', user: userObject(u.id), serviceAccount: null })),
        ...serviceAccounts.map((s) => ({
          id: `rb-${ws.id}-${s.id}`,
          role: 'WORKSPACE_EDITOR',
          user: null,
          serviceAccount: { id: s.id, label: s.label, category: 'ci', active: true },
        })),
      ],
    };
  };

  const deploymentObject = (d: SeedSoftwareDeployment) => {
    const recorded = platform.state.get().software.deployments[d.id] ?? {};
    return {
      id: d.id,
      type: 'airflow',
      label: d.label,
      description: d.description,
      releaseName: d.releaseName,
      namespace: `astronomer-${d.releaseName}`,
      version: d.version,
      airflowVersion: recorded.airflowVersion ?? d.airflowVersion,
      desiredAirflowVersion: null,
      runtimeVersion: recorded.runtimeVersion ?? d.runtimeVersion,
      desiredRuntimeVersion: d.desiredRuntimeVersion || null,
      runtimeAirflowVersion: d.runtimeAirflowVersion,
      executor: d.executor,
      status: 'HEALTHY',
      clusterId: d.clusterId,
      image: recorded.image ?? null,
      workspace: () => workspaceObject(d.workspaceId),
      deployInfo: platform.softwareDeployInfo(d),
      urls: platform.softwareDeploymentUrls(d),
      dagDeployment: { type: d.dagDeploymentType },
      createdAt: d.createdAt,
      updatedAt: recorded.updatedAt ?? d.createdAt,
    };
  };

  const requireDeploymentAccess = (principal: HoustonPrincipal, d: SeedSoftwareDeployment) => {
    if (!platform.canAccessSoftwareWorkspace(principal, d.workspaceId)) throw denied();
  };

  const accessibleWorkspaces = (principal: HoustonPrincipal) => {
    const ids = new Set(platform.softwareWorkspaceIds(principal));
    return software.workspaces.filter((w) => ids.has(w.id)).map((w) => workspaceObject(w.id));
  };

  const recordImage = (
    principal: HoustonPrincipal,
    d: SeedSoftwareDeployment,
    update: { image?: string | null; runtimeVersion?: string | null; airflowVersion?: string | null },
  ) => {
    if (update.image !== undefined && update.image !== null && update.image.trim() === '') throw userError('image must not be empty');
    platform.state.update((s) => {
      const current = (s.software.deployments[d.id] ??= {});
      if (update.image) {
        current.image = update.image;
        current.imageUpdatedAt = platform.isoNow();
        current.imageUpdatedBy = platform.describePrincipal(principal);
      }
      if (update.runtimeVersion) current.runtimeVersion = update.runtimeVersion;
      if (update.airflowVersion) current.airflowVersion = update.airflowVersion;
      current.updatedAt = platform.isoNow();
    });
    return deploymentObject(d);
  };

  return {
    appConfig: () => {
      const config = platform.softwareAppConfig();
      const flags = config.featureFlags;
      return {
        version: config.version,
        baseDomain: software.baseDomain,
        byoUpdateRegistryHost: config.byoUpdateRegistryHost,
        smtpConfigured: false,
        manualReleaseNames: false,
        configureDagDeployment: flags.dagOnlyDeployment ?? false,
        nfsMountDagDeployment: flags.nfsMountDagDeployment ?? false,
        manualNamespaceNames: flags.manualNamespaceNames ?? false,
        hardDeleteDeployment: flags.hardDeleteDeployment ?? false,
        triggererEnabled: flags.triggererEnabled ?? false,
        namespaceFreeFormEntry: flags.namespaceFreeFormEntry ?? false,
        featureFlags: flags,
      };
    },

    authConfig: () => software.authConfig,

    self: (_args: unknown, ctx: HoustonContext) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'houstonUser') throw denied();
      return { user: userObject(principal.userId), token: null, permissions: {}, isAdmin: false };
    },

    createToken: async (args: { identity?: string | null; password: string; duration?: number | null }) => {
      if (!software.authConfig.localEnabled) throw userError('Local authentication is disabled on this platform', 'UNAUTHENTICATED');
      const user = args.identity ? platform.userByIdentity(args.identity) : undefined;
      if (!user || user.password !== args.password) throw userError('Invalid username or password', 'UNAUTHENTICATED');
      const ttl = args.duration && args.duration > 0 ? Math.min(args.duration, 30 * 24 * 3600) : platform.options.houstonTokenTtlSeconds;
      const value = await platform.tokens.houstonUserToken(user.id, ttl);
      const iat = Math.floor(platform.now() / 1000);
      return { user: userObject(user.id), token: { value, payload: { uuid: user.id, iat, exp: iat + ttl } }, permissions: {}, isAdmin: false };
    },

    workspace: (args: { workspaceUuid: string }, ctx: HoustonContext) => {
      const principal = requirePrincipal(ctx);
      const ws = software.workspaces.find((w) => w.id === args.workspaceUuid);
      if (!ws) return null;
      if (!platform.canAccessSoftwareWorkspace(principal, ws.id)) throw denied();
      return workspaceObject(ws.id);
    },

    workspaces: (_args: unknown, ctx: HoustonContext) => accessibleWorkspaces(requirePrincipal(ctx)),

    paginatedWorkspaces: (args: { take?: number | null; pageNumber?: number | null }, ctx: HoustonContext) => {
      const all = accessibleWorkspaces(requirePrincipal(ctx));
      const take = args.take && args.take > 0 ? args.take : all.length;
      const pageNumber = Math.max(0, args.pageNumber ?? 0);
      return all.slice(pageNumber * take, pageNumber * take + take);
    },

    workspaceDeployments: (args: { workspaceUuid: string; releaseName?: string | null }, ctx: HoustonContext) => {
      const principal = requirePrincipal(ctx);
      if (!software.workspaces.some((w) => w.id === args.workspaceUuid)) throw userError(`Workspace ${args.workspaceUuid} not found`, 'NOT_FOUND');
      if (!platform.canAccessSoftwareWorkspace(principal, args.workspaceUuid)) throw denied();
      return software.deployments
        .filter((d) => d.workspaceId === args.workspaceUuid && (!args.releaseName || d.releaseName === args.releaseName))
        .map(deploymentObject);
    },

    deployment: (args: { where: { id?: string | null; releaseName?: string | null } }, ctx: HoustonContext) => {
      const principal = requirePrincipal(ctx);
      const { id, releaseName } = args.where;
      if (!id && !releaseName) throw userError('deployment(where) needs an id or a releaseName');
      const d = software.deployments.find((x) => (id ? x.id === id : x.releaseName === releaseName));
      if (!d) return null;
      requireDeploymentAccess(principal, d);
      return deploymentObject(d);
    },

    deploymentConfig: (_args: unknown, ctx: HoustonContext) => {
      requirePrincipal(ctx);
      return { ...software.deploymentConfig, defaultAirflowChartVersion: '1.0.0', executors: ['LocalExecutor', 'CeleryExecutor', 'KubernetesExecutor'] };
    },

    runtimeReleases: (args: { airflowVersion?: string | null; clusterId?: string | null }, ctx: HoustonContext) => {
      requirePrincipal(ctx);
      return seed.runtimeReleases
        .filter((r) => !args.airflowVersion || r.airflowVersion === args.airflowVersion)
        .map((r) => ({
          version: r.version,
          airflowVersion: r.airflowVersion,
          airflowDatabaseMigrations: r.airflowDatabaseMigration,
          channel: r.channel,
          releaseDate: r.releaseDate,
        }));
    },

    updateDeploymentImage: (
      args: { releaseName: string; image: string; airflowVersion?: string | null; runtimeVersion?: string | null },
      ctx: HoustonContext,
    ) => {
      const principal = requirePrincipal(ctx);
      const d = platform.softwareDeploymentByRelease(args.releaseName);
      if (!d) throw userError(`Deployment with release name ${args.releaseName} not found`, 'NOT_FOUND');
      requireDeploymentAccess(principal, d);
      return recordImage(principal, d, args);
    },

    upsertDeployment: (
      args: {
        deploymentUuid?: string | null;
        releaseName?: string | null;
        image?: string | null;
        runtimeVersion?: string | null;
        airflowVersion?: string | null;
      },
      ctx: HoustonContext,
    ) => {
      const principal = requirePrincipal(ctx);
      const d = args.deploymentUuid
        ? platform.softwareDeployment(args.deploymentUuid)
        : args.releaseName
          ? platform.softwareDeploymentByRelease(args.releaseName)
          : undefined;
      if (!d) {
        throw userError(
          args.deploymentUuid || args.releaseName
            ? `Deployment ${args.deploymentUuid ?? args.releaseName} not found`
            : 'the local platform only updates existing deployments: pass deploymentUuid or releaseName',
          'NOT_FOUND',
        );
      }
      requireDeploymentAccess(principal, d);
      return recordImage(principal, d, args);
    },
  };
}

const graphqlRequest = (value: unknown) => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.query !== 'string' || v.query.trim() === '') return undefined;
  if (v.variables !== undefined && v.variables !== null && (typeof v.variables !== 'object' || Array.isArray(v.variables))) return undefined;
  return {
    query: v.query,
    variables: (v.variables ?? undefined) as Record<string, unknown> | undefined,
    operationName: typeof v.operationName === 'string' ? v.operationName : undefined,
  };
};

export function registerHoustonRoutes(router: Router, platform: Platform): void {
  const rootValue = createHoustonResolvers(platform);

  router.on('POST', '/v1', async (ctx) => {
    const request = graphqlRequest(await ctx.json());
    if (!request) throw new HttpError(400, 'POST body must be JSON {"query": "...", "variables": {...}} with a non-empty query');
    let document: DocumentNode;
    try {
      document = parse(request.query);
    } catch (error) {
      sendJson(ctx.res, 400, { errors: [{ ...(error as GraphQLError).toJSON(), extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] });
      return;
    }
    const validationErrors = validate(schema, document);
    if (validationErrors.length > 0) {
      sendJson(ctx.res, 400, { errors: validationErrors.map((e) => ({ ...e.toJSON(), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })) });
      return;
    }
    const principal = await platform.authenticateHouston(ctx.req.headers.authorization);
    const result = await execute({
      schema,
      document,
      rootValue,
      contextValue: { principal } satisfies HoustonContext,
      variableValues: request.variables,
      operationName: request.operationName,
    });
    // Variable coercion failures leave no data at all; Apollo answers those with 400 too.
    sendJson(ctx.res, result.data === undefined && result.errors ? 400 : 200, result);
  });

  router.on('POST', '/:release/dags/upload', async (ctx) => uploadDags(ctx, platform));

  router.on('GET', '/:release/airflow', (ctx) => {
    const d = platform.softwareDeploymentByRelease(ctx.params.release!);
    if (!d) throw new HttpError(404, `no deployment with release name ${ctx.params.release}`);
    sendHtml(
      ctx.res,
      200,
      `<!doctype html><meta charset="utf-8"><title>${escapeHtml(d.label)}</title><h1>${escapeHtml(d.label)}</h1><p>Local stand-in for the Airflow UI of ${escapeHtml(d.releaseName)}.</p>`,
    );
  });
}

async function uploadDags(ctx: RequestContext, platform: Platform): Promise<void> {
  const fault = platform.faults.dagServer;
  if (fault.remaining > 0) {
    fault.remaining--;
    ctx.req.resume();
    throw new HttpError(fault.status, 'fault injected by the local platform');
  }
  const principal = await platform.authenticateHouston(ctx.req.headers.authorization);
  if (!principal) throw new HttpError(401, 'missing or invalid authorization: send the Houston token in the authorization header');
  const release = ctx.params.release!;
  const d = platform.softwareDeploymentByRelease(release);
  if (!d) throw new HttpError(404, `no deployment with release name ${release}`);
  if (d.dagDeploymentType !== 'dag_deploy') {
    throw new HttpError(404, `deployment ${release} has no DAG server: its dagDeployment type is ${d.dagDeploymentType}, not dag_deploy`);
  }
  if (!platform.canAccessSoftwareWorkspace(principal, d.workspaceId)) throw new HttpError(403, permissionDenied);

  const type = String(ctx.req.headers['content-type'] ?? '');
  if (!type.toLowerCase().startsWith('multipart/form-data')) throw new HttpError(400, 'upload must be multipart/form-data with a "file" field');
  const { file, filename, description } = await readMultipart(ctx);
  if (!file) throw new HttpError(400, 'multipart body has no "file" field');
  const verdict = await checkDagBundle(file);
  if (!verdict.ok) throw new HttpError(400, `invalid DAG bundle: ${verdict.reason}`);

  const record = {
    id: `upl_${randomBytes(8).toString('hex')}`,
    releaseName: release,
    deploymentId: d.id,
    description: description ?? '',
    filename: filename ?? '',
    sizeBytes: file.length,
    sha256: createHash('sha256').update(file).digest('hex'),
    files: verdict.files.slice(0, 500),
    uploadedBy: platform.describePrincipal(principal),
    uploadedAt: platform.isoNow(),
  };
  platform.state.update((s) => {
    s.software.dagUploads.push(record);
  });
  sendJson(ctx.res, 200, { message: 'upload successful', id: record.id, files: record.files.length });
}

function readMultipart(ctx: RequestContext): Promise<{ file?: Buffer; filename?: string; description?: string }> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: ctx.req.headers, limits: { fileSize: 512 * 1024 * 1024, files: 1, fields: 10 } });
    } catch (error) {
      reject(new HttpError(400, `malformed multipart request: ${(error as Error).message}`));
      return;
    }
    const out: { file?: Buffer; filename?: string; description?: string } = {};
    const pending: Promise<void>[] = [];
    parser.on('file', (name, stream, info) => {
      if (name !== 'file') {
        stream.resume();
        return;
      }
      pending.push(
        new Promise((done, fail) => {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('limit', () => fail(new HttpError(413, 'DAG bundle is larger than 512 MiB')));
          stream.on('end', () => {
            out.file = Buffer.concat(chunks);
            out.filename = info.filename;
            done();
          });
          stream.on('error', fail);
        }),
      );
    });
    parser.on('field', (name, value) => {
      if (name === 'description') out.description = value;
    });
    parser.on('error', (error: Error) => reject(new HttpError(400, `malformed multipart request: ${error.message}`)));
    parser.on('close', () => {
      Promise.all(pending).then(() => resolve(out), reject);
    });
    ctx.req.pipe(parser);
  });
}
