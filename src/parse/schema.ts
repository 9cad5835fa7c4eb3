/**
 * Shapes at the two boundaries of the parse engine: the JSON lines the Python harness writes on its result channel
 * (python/astro_parse/supervisor.py), and the ParseReport the engine returns.
 */
import * as z from 'zod';

export const HARNESS_PROTOCOL = 1;

const harnessError = z.object({
  path: z.string(),
  relPath: z.string(),
  message: z.string(),
  kind: z.enum(['import', 'timeout', 'crash']),
  line: z.number().int().positive().optional(),
});

const harnessDag = z.object({
  dagId: z.string(),
  fileloc: z.string(),
  relFileloc: z.string(),
  /** A cached, ordinarily imported module that holds this very DAG object (shared between files). */
  origin: z.string().nullable(),
});

/**
 * A folder of which only some names count (python/astro_parse/worker.py DependencyRecorder): those an import looked up
 * there (`modules`, with any suffix: `name`, `name.py`, `name.cpython-311-x86_64-linux-gnu.so`), and distributions'
 * metadata folders when importlib.metadata listed it (`metadata`).
 */
export const partialListing = z.object({ path: z.string(), modules: z.array(z.string()), metadata: z.boolean() });
export type PartialListing = z.infer<typeof partialListing>;

/** What an import read from the project: files opened, folders listed as a whole, folders of which some names count. */
const deps = z.object({ files: z.array(z.string()), dirs: z.array(z.string()), listings: z.array(partialListing) });

export const helloMessage = z.object({
  type: z.literal('hello'),
  protocol: z.literal(HARNESS_PROTOCOL),
  python: z.string(),
  airflowVersion: z.string(),
  airflowHome: z.string(),
  dagsFolder: z.string(),
  pluginsFolder: z.string().nullable(),
  safeMode: z.boolean(),
  ignoreSyntax: z.string(),
  /** The DAG folder cannot be written to. */
  projectReadOnly: z.boolean(),
  /** The root filesystem cannot be written to (host mode: all but temporary directories are read-only). */
  rootReadOnly: z.boolean(),
  dbCreated: z.boolean(),
  startupMs: z.number(),
  /** Project files and directories Airflow read while starting (airflow.cfg, local settings, plugin lookups). */
  deps,
});

export const skipReason = z.enum(['airflowignore', 'no-dag-heuristic']);

export const listingMessage = z.object({
  type: z.literal('listing'),
  files: z.array(z.object({ path: z.string(), relPath: z.string() })),
  skipped: z.array(z.object({ path: z.string(), relPath: z.string(), reason: skipReason })),
  /** Python files in the DAGs folder that cannot be read (DagBag passes over them silently). */
  unreadable: z.array(z.object({ path: z.string(), relPath: z.string(), message: z.string() })).default([]),
});

export const fileMessage = z.object({
  type: z.literal('file'),
  path: z.string(),
  relPath: z.string(),
  durationMs: z.number(),
  output: z.string(),
  outputDropped: z.number().int().nonnegative(),
  status: z.enum(['parsed', 'timeout', 'crashed']),
  errors: z.array(harnessError),
  dags: z.array(harnessDag).default([]),
  warnings: z.array(z.string()).default([]),
  deps: deps.optional(),
  parseMs: z.number().nullable().optional(),
});

export const doneMessage = z.object({
  type: z.literal('done'),
  preloaded: z.number(),
  elapsedMs: z.number(),
  /** Installed modules the files share: what a standby for the next run imports ahead (standby.ts). */
  modules: z.array(z.string()).optional(),
});
export const fatalMessage = z.object({ type: z.literal('fatal'), reason: z.string(), message: z.string() });

export const harnessMessage = z.discriminatedUnion('type', [helloMessage, listingMessage, fileMessage, doneMessage, fatalMessage]);

export type HelloMessage = z.infer<typeof helloMessage>;
export type ListingMessage = z.infer<typeof listingMessage>;
export type FileMessage = z.infer<typeof fileMessage>;
export type HarnessMessage = z.infer<typeof harnessMessage>;
export type HarnessError = z.infer<typeof harnessError>;

// ---- the report ----

export const parseError = z.object({
  /** Path relative to the project (AIRFLOW_HOME), as Astronomer's test labels it: `dags/my_dag.py`. */
  path: z.string(),
  message: z.string(),
  line: z.number().int().positive().optional(),
  kind: z.enum(['import', 'duplicate', 'timeout', 'crash', 'unreadable']),
});

export const parseFileResult = z.object({
  path: z.string(),
  /** error: fails the parse. ok: imported cleanly, or every error is listed in dag_integrity_exceptions.txt. */
  status: z.enum(['ok', 'error', 'skipped']),
  skipReason: skipReason.optional(),
  dagIds: z.array(z.string()),
  errors: z.array(parseError),
  /** Has errors, all of them exempted by `.astro/dag_integrity_exceptions.txt`. */
  exempted: z.boolean(),
  warnings: z.array(z.string()),
  /** What the DAG file printed while it was imported (capped). */
  output: z.string().optional(),
  durationMs: z.number().nonnegative(),
  cached: z.boolean(),
});

export const parseSummary = z.object({
  passed: z.boolean(),
  files: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  exempted: z.number().int().nonnegative(),
  skipped: z.number().int().nonnegative(),
  cached: z.number().int().nonnegative(),
  dags: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
  mode: z.enum(['host', 'image']),
  python: z.string().optional(),
  image: z.string().optional(),
  airflowVersion: z.string(),
  dagsFolder: z.string(),
  /** `.astro/dag_integrity_exceptions.txt` relative to the project, or null when the project has none. */
  exceptionsFile: z.string().nullable(),
  sandbox: z.object({
    network: z.enum(['none', 'host']),
    /** DAG code cannot change the project on disk (it sees a copy-on-write view, a private copy, or read-only mounts). */
    projectReadOnly: z.boolean(),
    /** overlay / copy: DAG code may write into the project as in the Runtime container, and the writes vanish. */
    projectView: z.enum(['overlay', 'copy', 'read-only', 'direct']),
    /** The cap on processes and threads DAG code may start (null: none could be set). */
    pidsLimit: z.number().int().positive().nullable(),
    /** What DAG code can do to the rest of the machine's files: image mode does not mount them at all. */
    hostFilesystem: z.enum(['read-only', 'writable', 'not-mounted']),
    memoryLimitMb: z.number().nonnegative(),
    importTimeoutSeconds: z.number().nullable(),
  }),
});

export const parseReport = z.object({ files: z.array(parseFileResult), summary: parseSummary });

export type ParseError = z.infer<typeof parseError>;
export type ParseFileResult = z.infer<typeof parseFileResult>;
export type ParseSummary = z.infer<typeof parseSummary>;
export type ParseReport = z.infer<typeof parseReport>;
