// Build step: turn etc/schemas/*.schema.json into plain validator functions
// (ajv "standalone" code), one CommonJS file per manifest in
// lib/config-validators/.
//
// Why: compiling a schema with ajv at run time costs tens of milliseconds per
// manifest and importing ajv itself costs more, and Phoenix scripts are called
// from bash loops where every start counts. The generated files need nothing
// from ajv at run time. They are CommonJS so config.mts can load each one
// synchronously (createRequire) the first time its manifest is read: a script
// that reads one manifest parses one validator. `make build` generates them
// (they are build output, not committed); test/config/config.test.mts fails when
// they are stale.
//
//   node lib/config/schema-build.mjs           regenerate
//   node lib/config/schema-build.mjs --check   exit 1 when a generated file is stale

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { outputFileSync, readJsonSync } from 'fs-extra/esm';
import AjvModule from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';

const Ajv = AjvModule.default;
const standaloneCode = standaloneModule.default;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCHEMA_DIR = path.join(ROOT, 'etc', 'schemas');
export const GENERATED_DIR = path.join(ROOT, 'lib', 'config-validators');

/** Generated file stem (lib/config-validators/<stem>.cjs) → schema file. */
export const SCHEMA_FILES = {
  hypervisor: 'phoenix_hypervisor_config.schema.json',
  lxc: 'phoenix_lxc_configs.schema.json',
  vm: 'phoenix_vm_configs.schema.json',
  stacks: 'phoenix_stacks_config.schema.json',
  certificates: 'certificate-manifest.schema.json',
} as const;

// strict: a typo in a schema keyword is a build error, not a silently ignored rule.
// messages: false, because config.mts writes its own messages from the error params.
const AJV_OPTIONS = {
  allErrors: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  messages: false,
  code: { source: true, lines: true },
} as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function readSchemas(dir: string = SCHEMA_DIR): Record<keyof typeof SCHEMA_FILES, Record<string, Json>> {
  const out: Record<string, Record<string, Json>> = {};
  for (const [name, file] of Object.entries(SCHEMA_FILES)) {
    out[name] = readJsonSync(path.join(dir, file)) as Record<string, Json>;
  }
  return out as Record<keyof typeof SCHEMA_FILES, Record<string, Json>>;
}

/**
 * Problems ajv's strict mode does not catch but config.mts relies on:
 * - an anyOf/oneOf branch may only list `required` keys, because the error
 *   formatter folds a failed anyOf into one line by its schema path, which only
 *   works when no branch reports errors from a $ref elsewhere;
 * - a definition with the same name must be identical in every schema file,
 *   since the files are self-contained copies of the shared vocabulary.
 */
export function lintSchemas(schemas: Record<string, Record<string, Json>>): string[] {
  const problems: string[] = [];
  const walk = (node: Json, where: string): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${where}/${i}`));
      return;
    }
    for (const keyword of ['anyOf', 'oneOf']) {
      const branches = node[keyword];
      if (!Array.isArray(branches)) continue;
      branches.forEach((branch, i) => {
        const keys = branch && typeof branch === 'object' && !Array.isArray(branch) ? Object.keys(branch) : ['?'];
        if (keys.some((k) => k !== 'required')) problems.push(`${where}/${keyword}/${i}: a branch may only use "required"`);
      });
      if (typeof node.description !== 'string') problems.push(`${where}: a node with ${keyword} needs a description for its error message`);
    }
    for (const [key, value] of Object.entries(node)) walk(value, `${where}/${key}`);
  };
  const seen = new Map<string, { file: string; text: string }>();
  for (const [name, schema] of Object.entries(schemas)) {
    walk(schema, `${name}#`);
    const definitions = schema.definitions;
    if (!definitions || typeof definitions !== 'object' || Array.isArray(definitions)) continue;
    for (const [def, body] of Object.entries(definitions)) {
      const text = JSON.stringify(body);
      const earlier = seen.get(def);
      if (earlier && earlier.text !== text) problems.push(`definitions/${def} differs between ${earlier.file} and ${name}`);
      else if (!earlier) seen.set(def, { file: name, text });
    }
  }
  return problems;
}

/** The generated files, by name, as they should be on disk. */
export function buildValidatorSources(dir: string = SCHEMA_DIR): Map<string, string> {
  const schemas = readSchemas(dir);
  const problems = lintSchemas(schemas);
  if (problems.length > 0) throw new Error(`schema lint failed:\n  ${problems.join('\n  ')}`);
  const out = new Map<string, string>();
  for (const [name, schema] of Object.entries(schemas)) {
    const ajv = new Ajv(AJV_OPTIONS);
    ajv.addSchema(schema, name);
    const code = standaloneCode(ajv, { validate: name });
    // Runtime helpers (string length, deep equality) would arrive as require()
    // calls into ajv; keep the schemas free of the keywords that need them
    // (minLength, uniqueItems over untyped items, ...) so ajv stays a build-only dependency.
    if (/\brequire\(/.test(code)) throw new Error(`${name}: generated validator needs an ajv runtime helper; avoid the keyword that pulls it in`);
    out.set(`${name}.cjs`, [
      `// Generated by lib/config/schema-build.mts from etc/schemas/${SCHEMA_FILES[name as keyof typeof SCHEMA_FILES]}. Do not edit;`,
      '// run `node lib/config/schema-build.mjs` after changing the schema.',
      code.trimEnd(),
      '',
    ].join('\n'));
  }
  return out;
}

/** Names of generated files that differ from what the schemas produce now. */
export function staleValidators(dir: string = SCHEMA_DIR, outDir: string = GENERATED_DIR): string[] {
  const stale: string[] = [];
  for (const [file, source] of buildValidatorSources(dir)) {
    const target = path.join(outDir, file);
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (current !== source) stale.push(file);
  }
  return stale;
}

function main(argv: string[]): number {
  if (argv.includes('--check')) {
    const stale = staleValidators();
    if (stale.length === 0) return 0;
    process.stderr.write(`stale in ${path.relative(process.cwd(), GENERATED_DIR)}: ${stale.join(', ')}; run node lib/config/schema-build.mjs\n`);
    return 1;
  }
  for (const [file, source] of buildValidatorSources()) outputFileSync(path.join(GENERATED_DIR, file), source);
  process.stderr.write(`wrote ${path.relative(process.cwd(), GENERATED_DIR)}/*.cjs\n`);
  return 0;
}

const invoked = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
