/**
 * A small Dockerfile reader for tests: turns the file into instructions (continuations joined,
 * comments dropped) and groups them into build stages, so assertions talk about `FROM`, `RUN`,
 * `USER` and `LABEL` rather than matching text.
 */

export interface Instruction {
  /** Upper-cased instruction keyword, e.g. `RUN`. */
  keyword: string;
  /** Everything after the keyword, flags included, continuations joined with a space. */
  args: string;
  /** Leading `--name=value` flags, e.g. `{ from: 'build' }` for `COPY --from=build`. */
  flags: Record<string, string>;
  /** Arguments without the leading flags. */
  rest: string;
  /** 1-based line on which the instruction starts. */
  line: number;
}

export interface Stage {
  /** Name given with `AS`, if any. */
  name?: string;
  /** Image or earlier stage the stage starts from. */
  base: string;
  /** Instructions after the stage's `FROM`. */
  instructions: Instruction[];
}

export function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let pending: { parts: string[]; line: number } | undefined;
  for (const [index, raw] of lines.entries()) {
    const trimmed = raw.trim();
    // Docker drops comment and empty lines, also between the lines of a continued instruction.
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const continues = trimmed.endsWith('\\');
    const part = continues ? trimmed.slice(0, -1).trim() : trimmed;
    if (pending) pending.parts.push(part);
    else pending = { parts: [part], line: index + 1 };
    if (!continues) {
      instructions.push(toInstruction(pending.parts.join(' '), pending.line));
      pending = undefined;
    }
  }
  if (pending) instructions.push(toInstruction(pending.parts.join(' '), pending.line));
  return instructions;
}

function toInstruction(source: string, line: number): Instruction {
  const match = /^(\S+)\s*(.*)$/s.exec(source);
  const keyword = (match?.[1] ?? '').toUpperCase();
  const args = match?.[2] ?? '';
  const flags: Record<string, string> = {};
  let rest = args;
  for (;;) {
    const flag = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest);
    if (!flag?.[1]) break;
    flags[flag[1]] = flag[2] ?? 'true';
    rest = rest.slice(flag[0].length);
  }
  return { keyword, args, flags, rest, line };
}

export function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [base = '', as, name] = instruction.rest.split(/\s+/);
      stages.push({ base, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** The exec (JSON array) form of CMD, ENTRYPOINT or RUN; undefined for the shell form. */
export function execForm(instruction: Instruction): string[] | undefined {
  if (!instruction.rest.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(instruction.rest);
  return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string') ? parsed : undefined;
}

/**
 * `key=value` pairs of LABEL, ENV or ARG, values unquoted. An ARG without a default maps to
 * undefined.
 */
export function keyValues(instruction: Instruction): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = {};
  for (const token of splitWords(instruction.rest)) {
    const equals = token.indexOf('=');
    if (equals < 0) result[token] = undefined;
    else result[token.slice(0, equals)] = unquote(token.slice(equals + 1));
  }
  return result;
}

/** Splits on whitespace outside double quotes. */
function splitWords(text: string): string[] {
  const words: string[] = [];
  let current = '';
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (char === '\\' && quoted) {
      current += char + (text[index + 1] ?? '');
      index++;
    } else if (char === '"') {
      quoted = !quoted;
      current += char;
    } else if (!quoted && (char === ' ' || char === '\t')) {
      if (current) words.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  if (current) words.push(current);
  return words;
}

function unquote(value: string): string {
  return value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
}

/** Splits a shell command line into its `&&`-joined commands, each as words. */
export function shellCommands(script: string): string[][] {
  return script
    .split(/&&|;/)
    .map((command) => command.trim().split(/\s+/).filter(Boolean))
    .filter((words) => words.length > 0);
}

/**
 * Whether the build context keeps `path` under the given .dockerignore: patterns apply in
 * order, the last match wins, `!` re-includes, and a pattern matching a folder covers its files.
 */
export function contextIncludes(dockerignore: string, path: string): boolean {
  const rules = dockerignore
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const include = line.startsWith('!');
      const pattern = (include ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      return { include, matcher: globToRegExp(pattern) };
    });
  const parts = path.split('/');
  const prefixes = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
  let included = true;
  for (const rule of rules) {
    if (prefixes.some((prefix) => rule.matcher.test(prefix))) included = rule.include;
  }
  return included;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] ?? '';
    if (char === '*' && pattern[index + 1] === '*') {
      // `**/` matches any number of folders, including none.
      source += pattern[index + 2] === '/' ? '(?:.*/)?' : '.*';
      index += pattern[index + 2] === '/' ? 2 : 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
