// The shape of src/: no import cycles (type imports included), link/ and tap/ import nothing
// from the layers above them, util/ imports only util/, and no file is over MAX_LINES long.
// The module graph is read with the TypeScript parser: static imports (`import type` too),
// export-from, `import x = require()`, dynamic `import('...')` and `import('...')` types.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAX_LINES = 600;
/**
 * Files allowed to be longer, each with its reason. src/teach/charts.js is one module by
 * contract: the browser loads it as is, with no bundler and no imports at run time.
 */
const LONG_BY_DESIGN: readonly string[] = ['src/teach/charts.js'];

/**
 * Violations allowed while src/tcp is being split, and only these. The TCP split must empty
 * this list: an entry that no longer matches a violation fails the test, so it is removed
 * as soon as it is fixed.
 */
const PENDING_TCP_SPLIT: readonly Pending[] = [];

type Pending = { kind: 'cycle'; files: readonly string[] } | { kind: 'lines'; file: string };

/** Folders of src/ and the folders each may import from (every other one is above it). */
const ALLOWED_IMPORTS: Record<string, readonly string[]> = {
  'src/link': ['src/link', 'src/tap', 'src/util'],
  'src/tap': ['src/link', 'src/tap', 'src/util'],
  'src/util': ['src/util'],
};

/** The modules: TypeScript, and the checked plain-JavaScript ones the browser loads (src/teach). */
function listTs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') || name.endsWith('.js'))
    .sort()
    .map((name) => path.join(dir, name));
}

/** Every module specifier in a file's text, in order of appearance. */
function specifiers(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: string[] = [];
  const literal = (n: ts.Node | undefined): void => {
    if (n && ts.isStringLiteralLike(n)) out.push(n.text);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) literal(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) literal(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) literal(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) literal(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

interface Module {
  /** Path from the repository root, with '/' separators: src/udp/udp.ts. */
  name: string;
  lines: number;
  /** Modules in src/ it imports (resolved relative specifiers). */
  deps: string[];
  /** Relative specifiers that name no file of src/. */
  unresolved: string[];
}

function readGraph(): Map<string, Module> {
  const files = listTs(path.join(ROOT, 'src'));
  const rel = (abs: string): string => path.relative(ROOT, abs).split(path.sep).join('/');
  const names = new Set(files.map(rel));
  const graph = new Map<string, Module>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const mod: Module = { name: rel(file), lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0), deps: [], unresolved: [] };
    for (const spec of specifiers(file, text)) {
      if (!spec.startsWith('.')) continue; // a package or node: builtin
      const target = rel(path.resolve(path.dirname(file), spec));
      if (names.has(target)) {
        if (!mod.deps.includes(target)) mod.deps.push(target);
      } else mod.unresolved.push(spec);
    }
    graph.set(mod.name, mod);
  }
  return graph;
}

/** Strongly connected components (Tarjan), each sorted; only those that hold a cycle. */
function cyclicComponents(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const strongConnect = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!indexOf.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
    }
    if (low.get(v) === indexOf.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (edges.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!indexOf.has(v)) strongConnect(v);
  return out.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/** A shortest cycle from `start` back to it within the component, as "a -> b -> a". */
function cyclePath(edges: ReadonlyMap<string, readonly string[]>, scc: readonly string[], start = scc[0]!): string {
  const inScc = new Set(scc);
  const prev = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of edges.get(v) ?? []) {
      if (!inScc.has(w)) continue;
      if (w === start) {
        const back = [];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = prev.get(u)) back.push(u);
        return [start, ...back.reverse(), start].join(' -> ');
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return scc.join(', '); // unreachable for a real component
}

/** The shortest cycle through each file of a component, each once, starting at its first file. */
function cyclesOf(edges: ReadonlyMap<string, readonly string[]>, scc: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const file of scc) {
    const ring = cyclePath(edges, scc, file).split(' -> ').slice(0, -1);
    const first = ring.indexOf([...ring].sort()[0]!);
    const rotated = [...ring.slice(first), ...ring.slice(0, first)];
    seen.add([...rotated, rotated[0]].join(' -> '));
  }
  return [...seen].sort();
}

function edgesOf(graph: Map<string, Module>): Map<string, string[]> {
  return new Map([...graph.values()].map((m) => [m.name, m.deps]));
}

const sameFiles = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().every((f, i) => f === [...b].sort()[i]);

const graph = readGraph();

test('the parser finds every kind of import, type imports included', () => {
  const text = [
    "import a from './a.ts';",
    "import type { B } from './b.ts';",
    "import { type C, d } from './cd.ts';",
    "import './side-effect.ts';",
    "export { e } from './e.ts';",
    "export type { F } from './f.ts';",
    "export * from './g.ts';",
    "const h = await import('./h.ts');",
    "let i: import('./i.ts').I;",
    "import j = require('./j.ts');",
    "import fs from 'node:fs';",
    "// import k from './comment.ts';",
    "const s = \"import l from './string.ts'\";",
  ].join('\n');
  assert.equal(specifiers('x.ts', text), ['./a.ts', './b.ts', './cd.ts', './side-effect.ts', './e.ts', './f.ts', './g.ts', './h.ts', './i.ts', './j.ts', 'node:fs']);
});

test('the cycle finder reports a -> b -> a and leaves a tree alone', () => {
  const cyclic = new Map([['a', ['b']], ['b', ['c', 'a']], ['c', ['d']], ['d', []], ['e', ['e']]]);
  const sccs = cyclicComponents(cyclic);
  assert.equal(sccs, [['a', 'b'], ['e']]);
  assert.is(cyclePath(cyclic, sccs[0]!), 'a -> b -> a');
  assert.is(cyclePath(cyclic, sccs[1]!), 'e -> e');
  const ring = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]);
  assert.is(cyclePath(ring, cyclicComponents(ring)[0]!), 'a -> b -> c -> a');
  const two = new Map([['a', ['b', 'c']], ['b', ['a']], ['c', ['a']]]);
  assert.equal(cyclesOf(two, cyclicComponents(two)[0]!), ['a -> b -> a', 'a -> c -> a']);
  assert.equal(cyclicComponents(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]])), []);
});

test('src/ has files, and every relative import names a file of src/', () => {
  assert.ok(graph.size > 20, `only ${graph.size} files read`);
  assert.ok(graph.has('src/util/checksum.ts'));
  const bad = [...graph.values()].flatMap((m) => m.unresolved.map((s) => `${m.name}: '${s}'`));
  assert.equal(bad, [], `imports outside src/ or of missing files:\n  ${bad.join('\n  ')}`);
});

test('no import cycles in src/ (type imports included)', () => {
  const edges = edgesOf(graph);
  const pending = PENDING_TCP_SPLIT.filter((p) => p.kind === 'cycle');
  const cycles = cyclicComponents(edges).filter((scc) => !pending.some((p) => sameFiles(p.files, scc)));
  const report = cycles.flatMap((scc) => cyclesOf(edges, scc));
  assert.equal(report, [], `import cycles:\n  ${report.join('\n  ')}`);
});

test('src/link, src/tap and src/util import nothing from the layers above them', () => {
  const bad: string[] = [];
  for (const m of graph.values()) {
    const folder = Object.keys(ALLOWED_IMPORTS).find((f) => m.name.startsWith(`${f}/`));
    if (folder === undefined) continue;
    for (const dep of m.deps) {
      if (!ALLOWED_IMPORTS[folder]!.some((f) => dep.startsWith(`${f}/`))) bad.push(`${m.name} -> ${dep}`);
    }
  }
  assert.equal(bad, [], `upward imports:\n  ${bad.join('\n  ')}`);
});

test(`no file in src/ has more than ${MAX_LINES} lines`, () => {
  const pending = PENDING_TCP_SPLIT.flatMap((p) => (p.kind === 'lines' ? [p.file] : []));
  const long = [...graph.values()].filter((m) => m.lines > MAX_LINES && !pending.includes(m.name) && !LONG_BY_DESIGN.includes(m.name)).map((m) => `${m.name}: ${m.lines} lines`);
  assert.equal(long, [], `files over ${MAX_LINES} lines:\n  ${long.join('\n  ')}`);
});

test('every PENDING_TCP_SPLIT entry is still a violation (remove the ones fixed)', () => {
  const sccs = cyclicComponents(edgesOf(graph));
  const stale = PENDING_TCP_SPLIT.filter((p) =>
    p.kind === 'cycle' ? !sccs.some((scc) => p.files.every((f) => scc.includes(f))) : !((graph.get(p.file)?.lines ?? 0) > MAX_LINES),
  ).map((p) => JSON.stringify(p));
  assert.equal(stale, [], `no longer violations, remove from PENDING_TCP_SPLIT:\n  ${stale.join('\n  ')}`);
});

test.run();
