/**
 * Go's spelling of boolean flags (`--wait=true`, `--dags=false`, `-f=1`), as Astronomer's CLI (cobra/pflag) takes
 * them, rewritten into commander's before it parses: `--x=<true>` becomes `--x`, `--x=<false>` becomes `--no-x` when
 * the command defines it and is dropped otherwise (every boolean flag is false unless given). The command is found
 * by walking argv through the command tree, so only its own and its ancestors' boolean options are touched; values
 * of options that take one are skipped, and nothing after `--` is looked at.
 */
import type { Command, Option } from 'commander';
import { UsageError } from '../errors.js';

/** The values Go's strconv.ParseBool accepts. */
const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

function findOption(chain: readonly Command[], flag: string): Option | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const found = chain[i]!.options.find((o) => o.long === flag || o.short === flag);
    if (found) return found;
  }
  return undefined;
}

function findSubcommand(command: Command, name: string): Command | undefined {
  return command.commands.find((c) => c.name() === name || c.aliases().includes(name));
}

function takesValue(option: Option): boolean {
  return option.required || option.optional;
}

/** The flag to pass for `flag=value` of a boolean option, or undefined to pass nothing. */
function rewrite(chain: readonly Command[], option: Option, flag: string, value: string): string | undefined {
  if (TRUE.has(value)) return flag;
  if (!FALSE.has(value)) {
    throw new UsageError(`${flag} takes true or false, not "${value}".`, { nextStep: `Pass ${flag} alone for true, or leave it out for false.` });
  }
  // `--x=false` means `--no-x` where both exist (and `--no-x=false` means `--x`); else the default, false.
  const long = option.long ?? '';
  const opposite = option.negate ? long.replace(/^--no-/, '--') : long.replace(/^--/, '--no-');
  return opposite !== long && findOption(chain, opposite) ? opposite : undefined;
}

export function normalizeBooleanFlags(program: Command, argv: readonly string[]): string[] {
  const chain: Command[] = [program];
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const match = /^(--[^=]+|-[^-=])(?:=(.*))?$/s.exec(token);
    if (!match) {
      if (!token.startsWith('-')) {
        const sub = findSubcommand(chain.at(-1)!, token);
        if (sub) chain.push(sub);
      }
      out.push(token);
      continue;
    }
    const [, flag, value] = match as unknown as [string, string, string | undefined];
    const option = findOption(chain, flag);
    if (!option) {
      out.push(token);
      continue;
    }
    if (takesValue(option)) {
      out.push(token);
      // `--name value`: the value is not a flag, whatever it looks like.
      const next = argv[i + 1];
      if (value === undefined && next !== undefined && (option.required || !next.startsWith('-'))) out.push(argv[++i]!);
      continue;
    }
    if (value === undefined) {
      out.push(token);
      continue;
    }
    const replacement = rewrite(chain, option, flag.startsWith('--') ? flag : (option.long ?? flag), value);
    if (replacement !== undefined) out.push(replacement);
  }
  return out;
}
