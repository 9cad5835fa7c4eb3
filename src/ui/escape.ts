/**
 * Text that astro did not write itself (file names, DAG code's exceptions, pytest output, platform and engine
 * messages) may carry terminal control sequences: a file named `a\x1b[2J.py` would clear the screen, a carriage
 * return or a newline in a name would forge a line of astro's own output, a bidi override would reorder what
 * the reader sees. Such characters are shown as visible escapes instead.
 */

/**
 * C0 controls, DEL and C1 controls (some terminals act on 8-bit CSI, U+009B), and the invisible bidirectional
 * formatting characters (embeddings, overrides, isolates and marks) that make text read differently than it is.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** The same set minus newline and tab, for text whose line breaks are layout. */
const UNSAFE_KEEP_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\x1b' };

function visible(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

export interface EscapeOptions {
  /** Keep `\n` and `\t` (multi-line text such as a traceback); `\r\n` becomes `\n`. Default: escape them too. */
  keepLayout?: boolean;
}

/** Replaces every terminal control character of `text` with a visible escape such as `\x1b` or `\u202e`. */
export function escapeTerminal(text: string, options: EscapeOptions = {}): string {
  if (options.keepLayout) return text.replace(/\r\n/g, '\n').replace(UNSAFE_KEEP_LAYOUT, visible);
  return text.replace(UNSAFE, visible);
}

/** One line of foreign text (a file name, a Deployment name): newlines are escaped too, so it cannot forge lines. */
export function escapeLine(text: string): string {
  return escapeTerminal(text);
}

/**
 * JSON.stringify escapes C0 controls but leaves DEL, C1 controls and bidi characters raw; a JSON document read on
 * a terminal or in a CI log deserves the same protection. The \u escapes keep the document's value unchanged.
 */
export function escapeJsonText(json: string): string {
  return json.replace(/[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
