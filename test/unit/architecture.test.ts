// The layering of src/, read from the code itself (docs/architecture.md draws it). Each top-level folder's entry
// file ends its one-paragraph header comment with `// May import: a, b, c.` (or `nothing from src.`); the leaf
// files naming.ts and errors.ts may be imported by every folder and carry the same line for what they import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Entry files of folders without an index.ts. */
const ENTRY: Record<string, string> = {
  cli: 'main.ts',
  fs: 'contained-rm.ts',
  jobs: 'registry.ts',
  mysql: 'data-node.ts',
  ops: 'status.ts',
  restore: 'run.ts',
  time: 'zone.ts',
};
/** Top-level files every folder may import without listing them. */
const LEAVES = ['naming.ts', 'errors.ts'];

const MAY_IMPORT = /^\/\/ May import: (.*)\.$/;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

const rel = (p: string) => path.relative(SRC, p).split(path.sep).join('/');
const folders = readdirSync(SRC).filter((n) => statSync(path.join(SRC, n)).isDirectory()).sort();
const leaves = readdirSync(SRC).filter((n) => n.endsWith('.ts')).sort();
/** A node of the graph: a top-level folder, or a top-level file. */
const nodes = [...folders, ...leaves];
const allFiles = tsFiles(SRC);

/** The folder (or top-level file) of src a path lies in; undefined outside src. */
function nodeOf(file: string): string | undefined {
  const r = path.relative(SRC, file);
  if (r.startsWith('..') || path.isAbsolute(r)) return undefined;
  return r.split(path.sep)[0];
}

/** Relative module specifiers of a source file: static imports, `export … from`, and `import('…')`. */
function relativeImports(source: string): string[] {
  const found: string[] = [];
  const patterns = [/\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g, /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g, /^\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

/** The header comment (the `//` lines the file opens with) and the names its May-import line allows. */
function rule(node: string): { entry: string; header: string[]; allowed?: string[] } {
  const entry = leaves.includes(node) ? node : `${node}/${ENTRY[node] ?? 'index.ts'}`;
  let text: string;
  try {
    text = readFileSync(path.join(SRC, entry), 'utf8');
  } catch {
    return { entry, header: [] };
  }
  const lines = text.split('\n');
  const header = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
  const m = MAY_IMPORT.exec(header.at(-1) ?? '');
  if (!m) return { entry, header };
  const allowed = m[1] === 'nothing from src' ? [] : m[1]!.split(',').map((s) => s.trim());
  return { entry, header, allowed };
}

const rules = new Map(nodes.map((n) => [n, rule(n)]));

test('architecture: every folder of src (and naming.ts, errors.ts) has a one-paragraph header ending in its May-import line', () => {
  const problems: string[] = [];
  for (const [node, r] of rules) {
    if (r.header.length === 0) problems.push(`${r.entry}: no header comment (or no such entry file)`);
    else if (!r.allowed) problems.push(`${r.entry}: the header comment does not end with "// May import: a, b, c." or "// May import: nothing from src."`);
    else {
      if (r.header.some((l) => l.trim() === '//')) problems.push(`${r.entry}: the header comment is more than one paragraph`);
      for (const name of r.allowed) if (!nodes.includes(name) || name === node) problems.push(`${r.entry}: May import names "${name}", not another folder or file of src`);
    }
  }
  assert.deepEqual(problems, []);
});

test('architecture: every relative import goes where its folder may import', () => {
  const problems: string[] = [];
  for (const file of allFiles) {
    const from = nodeOf(file)!;
    const allowed = rules.get(from)?.allowed ?? [];
    for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
      const to = nodeOf(path.resolve(path.dirname(file), spec));
      if (to === from) continue;
      if (to === undefined) problems.push(`${rel(file)} imports ${spec}, outside src`);
      else if (!allowed.includes(to) && !(LEAVES.includes(to) && !LEAVES.includes(from))) {
        problems.push(`${rel(file)} imports ${spec}: ${from} may not import ${to}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('architecture: the folders import one another one way only (no cycle)', () => {
  const edges = new Map<string, Set<string>>(nodes.map((n) => [n, new Set()]));
  for (const file of allFiles) {
    const from = nodeOf(file)!;
    for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
      const to = nodeOf(path.resolve(path.dirname(file), spec));
      if (to && to !== from) edges.get(from)!.add(to);
    }
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (n: string, trail: string[]) => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') return void cycles.push([...trail.slice(trail.indexOf(n)), n].join(' → '));
    state.set(n, 'open');
    for (const m of edges.get(n)!) visit(m, [...trail, n]);
    state.set(n, 'done');
  };
  for (const n of nodes) visit(n, []);
  assert.deepEqual(cycles, []);
});

test('architecture: SQL goes through src/metadata (no `.pool.` elsewhere)', () => {
  const outside = allFiles.filter((f) => nodeOf(f) !== 'metadata' && /\.pool\./.test(readFileSync(f, 'utf8')));
  assert.deepEqual(outside.map(rel), []);
});

test('architecture: no file in src/jobs is over 250 lines', () => {
  const long = allFiles
    .filter((f) => nodeOf(f) === 'jobs')
    .map((f) => ({ file: rel(f), lines: readFileSync(f, 'utf8').trimEnd().split('\n').length }))
    .filter((f) => f.lines > 250)
    .map((f) => `${f.file}: ${f.lines} lines`);
  assert.deepEqual(long, []);
});

test('architecture: no comment in src refers to an issue number', () => {
  const found: string[] = [];
  for (const file of allFiles) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g)) {
      if (/issue\s*#?\d/i.test(m[0])) found.push(`${rel(file)}:${text.slice(0, m.index).split('\n').length}: ${m[0].split('\n')[0]!.trim()}`);
    }
  }
  assert.deepEqual(found, []);
});

test('architecture: relativeImports finds static, re-exported and dynamic imports, not packages', () => {
  const source = [
    "import { a } from '../a/index.ts';",
    "import type {\n  B,\n} from './b.ts';",
    "export { c } from '../c/c.ts';",
    "export * from '../../d.ts';",
    "const e = await import('../e/e.ts');",
    "import '../f/side-effect.ts';",
    "import { g } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(relativeImports(source).sort(), ['../../d.ts', '../a/index.ts', '../c/c.ts', '../e/e.ts', '../f/side-effect.ts', './b.ts'].sort());
});
