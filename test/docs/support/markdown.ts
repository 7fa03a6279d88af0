import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** The repository root (this file is test/docs/support/markdown.ts). */
export const repoRoot = resolve(import.meta.dirname, '../../..');

/** README.md and every Markdown file under docs/, as paths relative to the repository root. */
export function documentationFiles(root = repoRoot): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) found.push(path);
    }
  };
  if (existsSync(join(root, 'docs'))) walk('docs');
  return ['README.md', ...found.sort()].filter((file) => existsSync(join(root, file)));
}

export interface Fence {
  lang: string;
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
}

/** Fenced code blocks (``` or ~~~, any length), with their info string's first word. */
export function fencedBlocks(markdown: string): Fence[] {
  const blocks: Fence[] = [];
  const lines = markdown.split('\n');
  let open: { marker: string; lang: string; line: number; body: string[] } | undefined;
  lines.forEach((text, index) => {
    if (!open) {
      const start = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/.exec(text);
      if (start) open = { marker: start[1] as string, lang: start[2] ?? '', line: index + 1, body: [] };
      return;
    }
    const close = new RegExp(`^ {0,3}${open.marker[0]}{${open.marker.length},}\\s*$`);
    if (close.test(text)) {
      blocks.push({ lang: open.lang, body: open.body.join('\n'), line: open.line });
      open = undefined;
    } else open.body.push(text);
  });
  return blocks;
}

/** The text with fenced blocks and inline code blanked out (line numbers kept). */
export function withoutCode(markdown: string): string {
  const lines = markdown.split('\n');
  for (const block of fencedBlocks(markdown)) {
    const bodyLines = block.body === '' ? 0 : block.body.split('\n').length;
    for (let i = block.line - 1; i <= block.line + bodyLines; i++) lines[i] = '';
  }
  return lines.join('\n').replace(/(`+)[^`]*?\1/g, (code) => code.replace(/[^\n]/g, ' '));
}

export interface Link {
  target: string;
  line: number;
}

/** Targets of inline links and images, reference definitions and HTML href/src attributes. */
export function linksOf(markdown: string): Link[] {
  const text = withoutCode(markdown);
  const found: Link[] = [];
  const patterns = [
    /!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g,
    /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm,
    /\b(?:href|src)="([^"]*)"/g,
  ];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) {
      const line = text.slice(0, match.index).split('\n').length;
      found.push({ target: match[1] ?? '', line });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

/** GitHub's anchor for a heading text: lower case, punctuation dropped, spaces to hyphens. */
export function slugOf(heading: string): string {
  return (
    heading
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      // Code spans are text (their < and > are punctuation, dropped below); other tags are markup.
      .replace(/(`+)(.*?)\1/g, (_code, _ticks, content: string) => content.replace(/[<>]/g, ''))
      .replace(/<[^>]+>/g, '')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc}\- ]/gu, '')
      .replace(/ /g, '-')
  );
}

/** Every anchor a Markdown file offers: heading slugs (repeats get -1, -2 …) and HTML ids/names. */
export function anchorsOf(markdown: string): Set<string> {
  const text = withoutCode(markdown);
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  // withoutCode blanked inline code; headings keep its text on GitHub, so read headings from the source.
  const source = markdown.split('\n');
  text.split('\n').forEach((line, index) => {
    if (!/^ {0,3}#{1,6}\s/.test(line)) return;
    const heading = (source[index] ?? '').replace(/^ {0,3}#{1,6}\s+/, '').replace(/\s+#+\s*$/, '');
    const base = slugOf(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  });
  for (const match of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(match[1] as string);
  return anchors;
}

const external = /^[a-z][a-z0-9+.-]*:/i;

/**
 * Checks every relative link of the given Markdown files: the target exists inside the repository,
 * and an anchor into a Markdown file names one of its headings. Returns one line per broken link.
 */
export function brokenLinks(files: string[], root = repoRoot): string[] {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsIn = (path: string) => {
    let anchors = anchorCache.get(path);
    if (!anchors) {
      anchors = anchorsOf(readFileSync(path, 'utf8'));
      anchorCache.set(path, anchors);
    }
    return anchors;
  };
  for (const file of files) {
    const absolute = join(root, file);
    for (const { target, line } of linksOf(readFileSync(absolute, 'utf8'))) {
      const where = `${file}:${line}: ${target || '(empty link)'}`;
      if (external.test(target)) continue;
      if (target === '') {
        problems.push(`${where} is empty`);
        continue;
      }
      const [pathPart = '', anchor] = target.split('#', 2) as [string, string | undefined];
      let path: string;
      try {
        const decoded = decodeURIComponent(pathPart.split('?')[0] as string);
        path =
          decoded === ''
            ? absolute
            : decoded.startsWith('/')
              ? join(root, decoded)
              : join(dirname(absolute), decoded);
      } catch {
        problems.push(`${where} is not a valid URL path`);
        continue;
      }
      const inside = relative(root, path);
      if (inside.startsWith(`..${sep}`) || inside === '..') {
        problems.push(`${where} points outside the repository`);
        continue;
      }
      if (!existsSync(path)) {
        problems.push(`${where} does not exist`);
        continue;
      }
      if (anchor && path.endsWith('.md') && statSync(path).isFile() && !anchorsIn(path).has(anchor)) {
        problems.push(`${where}: no heading with anchor #${anchor} in ${relative(root, path)}`);
      }
    }
  }
  return problems;
}
