// The layers of lib/, checked on the import lines of every module:
//
//   core → config → pve → guest → features → the domains → cli
//
// A module imports from its own layer or from one below it, never from one
// above, and no chain of imports comes back to where it started (type-only
// imports included: a type cycle is still two modules that cannot be read
// apart). Every module lives in a layer folder, and nothing in lib/ imports
// from scripts/ or test/. docs/architecture.md shows the same picture.
//
// Imports are read with the TypeScript compiler (static imports, `export …
// from`, and `import('…')` with a literal), so a comment that names a path
// does not count. The checks also run on planted graphs below, so a checker
// that stopped seeing violations fails instead of passing quietly.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { PROJECT_ROOT } from '../lib/core/project-root.mts';

/** Layer rank of each top folder of lib/. Folders of equal rank may import each other (without cycles). */
const LAYERS: Readonly<Record<string, number>> = {
  core: 0,
  config: 1,
  pve: 2,
  guest: 3,
  features: 4,
  lxc: 5, vm: 5, firewall: 5, pki: 5, certificates: 5, gateway: 5, hypervisor: 5, swarm: 5, stacks: 5, portainer: 5, sync: 5,
  cli: 6,
};
const LAYER_NAMES = ['core', 'config', 'pve', 'guest', 'features', 'domains', 'cli'];

interface Edge {
  from: string;
  to: string;
  line: number;
}

function modulesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...modulesUnder(full));
    else if (entry.name.endsWith('.mts')) out.push(full);
  }
  return out.sort();
}

/** Relative import targets of one module, project-relative. */
function importsOf(file: string, text: string): Edge[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const edges: Edge[] = [];
  const add = (spec: ts.Expression | undefined, node: ts.Node) => {
    if (!spec || !ts.isStringLiteralLike(spec) || !spec.text.startsWith('.')) return;
    edges.push({ from: file, to: path.normalize(path.join(path.dirname(file), spec.text)), line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier, node);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], node);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, node);
    node.forEachChild(visit);
  };
  visit(sf);
  return edges;
}

/** The layer of a lib/ module, or undefined when it sits outside every layer folder. */
function layerOf(file: string): number | undefined {
  const parts = file.split(path.sep);
  return parts[0] === 'lib' && parts.length > 2 ? LAYERS[parts[1] as string] : undefined;
}

function upwardImports(edges: readonly Edge[]): string[] {
  const found: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from);
    if (!e.to.startsWith(`lib${path.sep}`)) {
      found.push(`${e.from}:${e.line} imports ${e.to}, outside lib/`);
      continue;
    }
    const to = layerOf(e.to);
    if (from !== undefined && to !== undefined && to > from) {
      found.push(`${e.from}:${e.line} (${LAYER_NAMES[from]}) imports ${e.to} (${LAYER_NAMES[to]})`);
    }
  }
  return found;
}

/** Every import cycle, each as the chain of modules that closes it. */
function cycles(edges: readonly Edge[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const found = new Set<string>();
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const walk = (node: string): void => {
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node) ?? []) {
      if (onStack.has(to)) found.add([...stack.slice(stack.indexOf(to)), to].join(' → '));
      else if (!done.has(to)) walk(to);
    }
    stack.pop();
    onStack.delete(node);
    done.add(node);
  };
  for (const node of [...next.keys()].sort()) if (!done.has(node)) walk(node);
  return [...found];
}

const files = modulesUnder(path.join(PROJECT_ROOT, 'lib')).map((f) => path.relative(PROJECT_ROOT, f));
const edges = files.flatMap((f) => importsOf(f, fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8')));

test('every module of lib/ lives in a layer folder', () => {
  const loose = files.filter((f) => layerOf(f) === undefined);
  assert.equal(loose, [], `modules outside the layers (${Object.keys(LAYERS).join(', ')}):\n${loose.join('\n')}`);
  for (const name of Object.keys(LAYERS)) assert.ok(files.some((f) => f.startsWith(path.join('lib', name) + path.sep)), `lib/${name}/ is empty: remove it from the list`);
});

test('the scan sees the imports (a sample of known ones)', () => {
  assert.ok(files.length > 100, `only ${files.length} modules found`);
  const has = (from: string, to: string) => edges.some((e) => e.from === path.normalize(from) && e.to === path.normalize(to));
  assert.ok(has('lib/core/runner.mts', 'lib/core/errors.mts'), 'a static import');
  assert.ok(has('lib/features/lxc/traefik.mts', 'lib/features/lxc/traefik-static.mts'), "an import('…') expression");
});

test('no module imports from a layer above its own', () => {
  const up = upwardImports(edges);
  assert.equal(up, [], `imports that point up:\n${up.join('\n')}`);
});

test('no imports in a circle', () => {
  const found = cycles(edges);
  assert.equal(found, [], `import cycles:\n${found.join('\n')}`);
});

test('planted: an upward import, an import out of lib/ and a cycle are found', () => {
  const planted = [
    ...importsOf('lib/core/log.mts', "import { x } from '../pve/pct.mts';\n"),
    ...importsOf('lib/pve/qm.mts', "const m = await import('../../scripts/phoenix-cli.mts');\n"),
    ...importsOf('lib/guest/a.mts', "import type { T } from './b.mts';\n"),
    ...importsOf('lib/guest/b.mts', "export { y } from './c.mts';\n"),
    ...importsOf('lib/guest/c.mts', "import { z } from './a.mts';\n// import { no } from '../cli/executor.mts';\n"),
    ...importsOf('lib/cli/executor.mts', "import { q } from '../features/lxc/docker.mts';\n"),
  ];
  const up = upwardImports(planted);
  assert.equal(up.length, 2, up.join('\n'));
  assert.match(up[0] as string, /lib\/core\/log\.mts:1 \(core\) imports lib\/pve\/pct\.mts \(pve\)/);
  assert.match(up[1] as string, /outside lib\//);
  assert.equal(cycles(planted), ['lib/guest/a.mts → lib/guest/b.mts → lib/guest/c.mts → lib/guest/a.mts']);
  assert.equal(layerOf('lib/loose.mts'), undefined, 'a module at the top of lib/ is in no layer');
});

test.run();
