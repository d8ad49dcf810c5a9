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
// Modules a script loads with `import()` go into chunks in a folder beside
// it (`.<script>.chunks/`), read only when a run needs them.
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

/** Where a script's lazily loaded chunks go: a folder beside it, named after it. */
export function chunkDir(source: string): string {
  return path.join(path.dirname(source), `.${path.basename(source, '.mts')}.chunks`);
}

export async function bundleScripts(sources: readonly string[]): Promise<number> {
  const esbuild = createRequire(import.meta.url)('esbuild') as EsbuildModule;
  const started = Date.now();
  // One build per script. A script that loads its stack with `import()`
  // after checking its arguments gets its lazily loaded modules in chunks of
  // its own, read only when the run gets there, so `--help` parses the
  // script's own code and nothing more. Any other script is one file: for a
  // script that always needs everything, chunks only add files to read.
  // (One build for all scripts would share chunks between them and make
  // every start read many small files.)
  await Promise.all(
    sources.map((source) => {
      const chunks = chunkDir(source);
      fs.rmSync(chunks, { recursive: true, force: true });
      const lazy = /\bawait import\(/.test(fs.readFileSync(source, 'utf8'));
      return esbuild.build({
        entryPoints: [{ in: source, out: path.relative(PROJECT_ROOT, source).replace(/\.mts$/, '') }],
        outdir: PROJECT_ROOT,
        outExtension: { '.js': '.mjs' },
        chunkNames: `${path.relative(PROJECT_ROOT, chunks)}/[name]-[hash]`,
        splitting: lazy,
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
    }),
  );
  return Date.now() - started;
}

const invoked = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (invoked === path.join(PROJECT_ROOT, 'lib', 'core', 'bundle-build.mjs')) {
  const sources = process.argv.length > 2 ? process.argv.slice(2).map((s) => path.resolve(s)) : scriptSources();
  const ms = await bundleScripts(sources);
  console.log(`bundled ${sources.length} scripts in ${ms} ms`);
}
