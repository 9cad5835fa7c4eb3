/**
 * The one output object every command receives. Results go to stdout, everything about progress to stderr;
 * with --json stdout carries exactly one JSON document. Known secrets are redacted from every line written, and
 * terminal control characters in it are escaped (src/ui/escape.ts): only the styling this object applies itself
 * reaches the terminal as escape sequences, so no caller has to remember which text came from outside.
 */
import { randomBytes } from 'node:crypto';
import { format } from 'node:util';
import type { AstroError } from '../errors.js';
import { escapeJsonText, escapeLine, escapeTerminal } from './escape.js';

export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export interface OutputOptions {
  json?: boolean;
  verbose?: boolean;
  noColor?: boolean;
  forceColor?: boolean;
  ci?: boolean;
}

export interface Spinner {
  update(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
}

type Style = (text: string) => string;

const REDACTED = '***';
/** Tokens shorter than this are not worth redacting (and would mangle ordinary words). */
const MIN_SECRET_LENGTH = 8;

export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  readonly color: boolean;
  /** Both stdin and stderr are terminals and we are not in CI: prompting is allowed. */
  readonly interactive: boolean;
  readonly streams: Streams;
  private readonly secrets = new Set<string>();
  private document: unknown = undefined;
  /** The spinner currently drawn on stderr, if any. */
  private live: { isSpinning: boolean; clear(): unknown; render(): unknown } | undefined;
  private documentSet = false;
  /**
   * Styling is recorded as private-use markers carrying a per-process random tag, and turned into real SGR
   * sequences only after the text was escaped: foreign text cannot forge them, since it never saw the tag.
   */
  private readonly styleTag = randomBytes(6).toString('hex');
  private readonly styleMarker = new RegExp(`\uE000${this.styleTag}:(\\d+)\uE001`, 'g');

  constructor(streams: Streams, options: OutputOptions = {}) {
    this.streams = streams;
    this.json = options.json ?? false;
    this.verbose = options.verbose ?? false;
    const stderrTTY = streams.stderr.isTTY === true;
    this.color = !options.noColor && (options.forceColor === true || stderrTTY);
    this.interactive = !options.ci && stderrTTY && streams.stdin?.isTTY === true;
  }

  /** Registers a value that must never appear in output (tokens, passwords). */
  addSecret(secret: string | undefined): void {
    if (secret === undefined) return;
    for (const form of [secret, secret.replace(/^Bearer\s+/i, '')]) {
      if (form.length >= MIN_SECRET_LENGTH) this.secrets.add(form);
    }
  }

  /**
   * Makes foreign text safe to print as it is, e.g. a child's output streamed chunk by chunk: known secrets
   * redacted, terminal control characters escaped (newlines and tabs kept).
   */
  redact(text: string): string {
    return escapeTerminal(this.hideSecrets(text), { keepLayout: true });
  }

  private hideSecrets(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    return out;
  }

  /** Redacts, escapes, then applies this object's own styling: the one path from text to the terminal. */
  private clean(text: string): string {
    return this.redact(text).replace(this.styleMarker, (_, code: string) => `\u001b[${code}m`);
  }

  /** util.format, with each string argument treated as one line of foreign text (its newlines escaped too). */
  private format(text: string, args: unknown[]): string {
    return args.length === 0 ? text : format(text, ...args.map((a) => (typeof a === 'string' ? escapeLine(a) : a)));
  }

  /** A human-readable result line on stdout (suppressed with --json, where the document holds the results). */
  result(text: string, ...args: unknown[]): void {
    if (this.json) return;
    this.write(this.streams.stdout, this.format(text, args));
  }

  /** Progress and information on stderr. */
  info(text: string, ...args: unknown[]): void {
    this.write(this.streams.stderr, this.format(text, args));
  }

  warn(text: string, ...args: unknown[]): void {
    this.write(this.streams.stderr, this.style.yellow(this.format(text, args)));
  }

  debug(text: string, ...args: unknown[]): void {
    if (this.verbose) this.write(this.streams.stderr, this.style.dim(this.format(text, args)));
  }

  /** Sets the single JSON document printed on stdout when the command ends (with --json). */
  setDocument(doc: unknown): void {
    this.document = doc;
    this.documentSet = true;
  }

  /** Called once by main() after the command ran. */
  flushDocument(): void {
    // A command that forgot to set a document still owes --json its one document.
    if (this.json) this.writeJson(this.documentSet ? this.document : {});
  }

  printError(error: AstroError): void {
    if (this.json) {
      const doc = {
        error: {
          kind: error.kind,
          message: error.message,
          ...(error.nextStep ? { nextStep: error.nextStep } : {}),
          exitCode: error.exitCode,
          ...('missing' in error && Array.isArray(error.missing) ? { missingFlags: error.missing } : {}),
        },
      };
      // Still one document: what the command produced so far (e.g. a parse report), with the error beside it.
      const partial = this.documentSet && this.document !== null && typeof this.document === 'object' && !Array.isArray(this.document) ? this.document : {};
      this.writeJson({ ...partial, ...doc });
    }
    this.write(this.streams.stderr, `${this.style.red('Error:')} ${error.message}`);
    if (error.nextStep) this.write(this.streams.stderr, error.nextStep);
    if (this.verbose && error.cause !== undefined) {
      const cause = error.cause instanceof Error ? (error.cause.stack ?? error.cause.message) : String(error.cause);
      this.write(this.streams.stderr, this.style.dim(`Caused by: ${cause}`));
    }
  }

  /** True when spinners animate (a terminal with a size, not --json); otherwise they print plain lines. */
  get animated(): boolean {
    const columns = (this.streams.stderr as { columns?: number }).columns;
    // A terminal that reports 0 columns (pseudo-terminals without a window size) sends ora into an endless
    // line-clearing loop: such terminals get the plain lines.
    return this.streams.stderr.isTTY === true && !this.json && columns !== 0;
  }

  /** A spinner on a terminal; plain start/end lines otherwise (CI logs stay readable). */
  async spinner(text: string): Promise<Spinner> {
    if (this.animated) {
      const { default: ora } = await import('ora');
      const spin = ora({ text: this.clean(text), stream: this.streams.stderr, color: 'cyan', isEnabled: true });
      if (!this.color) spin.color = 'white';
      spin.start();
      this.live = spin;
      const done = () => {
        if (this.live === spin) this.live = undefined;
      };
      return {
        update: (t) => {
          spin.text = this.clean(t);
        },
        succeed: (t) => {
          done();
          spin.succeed(t === undefined ? undefined : this.clean(t));
        },
        fail: (t) => {
          done();
          spin.fail(t === undefined ? undefined : this.clean(t));
        },
        stop: () => {
          done();
          spin.stop();
        },
      };
    }
    this.info(text);
    let last = text;
    return {
      update: (t) => {
        last = t;
      },
      succeed: (t) => {
        this.info(`✔ ${t ?? last}`);
      },
      fail: (t) => {
        this.info(`✖ ${t ?? last}`);
      },
      stop: () => {},
    };
  }

  readonly style: Record<'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan', Style> = {
    bold: (t) => this.sgr(1, 22, t),
    dim: (t) => this.sgr(2, 22, t),
    red: (t) => this.sgr(31, 39, t),
    green: (t) => this.sgr(32, 39, t),
    yellow: (t) => this.sgr(33, 39, t),
    cyan: (t) => this.sgr(36, 39, t),
  };

  private sgr(open: number, close: number, text: string): string {
    const mark = (code: number) => `\uE000${this.styleTag}:${code}\uE001`;
    return this.color ? `${mark(open)}${text}${mark(close)}` : text;
  }

  private writeJson(doc: unknown): void {
    // JSON.stringify already escapes C0 controls (ESC included); the rest of the unsafe set gets \u escapes too.
    const text = escapeJsonText(JSON.stringify(doc, null, 2));
    this.writeRaw(this.streams.stdout, this.hideSecrets(text));
  }

  private write(stream: NodeJS.WritableStream, text: string): void {
    this.writeRaw(stream, this.clean(text));
  }

  private writeRaw(stream: NodeJS.WritableStream, text: string): void {
    // A line written under a running spinner would be overwritten by its next frame: clear it, write, redraw.
    const spin = stream === this.streams.stderr && this.live?.isSpinning ? this.live : undefined;
    spin?.clear();
    stream.write(`${text}\n`);
    spin?.render();
  }
}
