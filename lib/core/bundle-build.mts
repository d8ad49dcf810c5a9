// `make build`, after tsc: each script under scripts/ is bundled with its lib
// modules and packages into the one .mjs file operators run, replacing what
// tsc wrote there. One file to read and compile instead of a hundred modules
// to resolve is what makes a script start fast (`make bench` shows the
// ratio). The lib modules tsc wrote stay for the tests that import them.
//
// zx stays outside the bundles: the runner loads it on the first command, so
// a script that only prints its help never reads it. CommonJS packages
// bundled into an ES module still call `require` for Node's built-ins, so
// each bundle defines one from its own location.
//
// Usage: node lib/core/bundle-build.mjs [script.mts ...]   (default: every script)

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PROJECT_ROOT } from './project-root.mts';

type EsbuildModule = typeof import('esbuild');

export function scriptSources(dir = path.join(PROJECT_ROOT, 'scripts')): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...scriptSources(file));
    else if (entry.name.endsWith('.mts')) out.push(file);
  }
  return out.sort();
}

export async function bundleScripts(sources: readonly string[]): Promise<number> {
  const esbuild = createRequire(import.meta.url)('esbuild') as EsbuildModule;
  const started = Date.now();
  await esbuild.build({
    entryPoints: sources.map((source) => ({ in: source, out: path.relative(PROJECT_ROOT, source).replace(/\.mts$/, '') })),
    outdir: PROJECT_ROOT,
    outExtension: { '.js': '.mjs' },
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    external: ['zx', 'zx/*', 'esbuild'],
    banner: { js: "import { createRequire as phoenixCreateRequire } from 'node:module'; const require = phoenixCreateRequire(import.meta.url);" },
    legalComments: 'none',
    logLevel: 'warning',
  });
  return Date.now() - started;
}

const invoked = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (invoked === path.join(PROJECT_ROOT, 'lib', 'core', 'bundle-build.mjs')) {
  const sources = process.argv.length > 2 ? process.argv.slice(2).map((s) => path.resolve(s)) : scriptSources();
  const ms = await bundleScripts(sources);
  console.log(`bundled ${sources.length} scripts in ${ms} ms`);
}
