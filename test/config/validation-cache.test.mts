// The cache of manifests that passed their schema (lib/config/validation-cache.mts):
// it spares the validators for an unchanged manifest, never lets a changed
// or invalid one through, is written only by a run that succeeded, and is
// ignored when someone else could have written it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../../lib/core/project-root.mts';
import { validationKey } from '../../lib/config/validation-cache.mts';
import { tmpDir } from '../helpers/tmp.mts';

const work = tmpDir('phoenix-validation-cache-');
const etc = path.join(work, 'etc');
fs.cpSync(path.join(PROJECT_ROOT, 'etc'), etc, { recursive: true });
const cacheDir = path.join(work, 'cache');
const cacheFile = path.join(cacheDir, 'validated-manifests.json');
const lxcFile = path.join(etc, 'phoenix_lxc_configs.json');
const pristine = fs.readFileSync(lxcFile, 'utf8');

/**
 * Load and check every manifest in a fresh process, as a script does; says
 * whether the LXC validator module was loaded, and how the load ended.
 */
function loadManifests(extraEnv: Record<string, string> = {}): { code: number; stderr: string; validatorLoaded: boolean } {
  const config = path.join(PROJECT_ROOT, 'lib', 'config', 'load.mjs');
  const probe = `
    const { loadConfig, resolveConfigPaths } = await import(${JSON.stringify(config)});
    const { createRequire } = await import('node:module');
    try {
      const c = loadConfig(resolveConfigPaths());
      void c.hypervisor; void c.lxc; void c.vm; void c.stacks; void c.certificates;
    } catch (err) { process.stderr.write(String(err.message) + '\\n'); process.exitCode = 1; }
    const cache = createRequire(${JSON.stringify(config)}).cache;
    process.stderr.write('validator loaded: ' + Object.keys(cache).some((f) => f.endsWith('config-validators/lxc.cjs')) + '\\n');
  `;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', PHOENIX_BASE_DIR: work, PHOENIX_CACHE_DIR: cacheDir, ...extraEnv };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stderr: r.stderr, validatorLoaded: /validator loaded: true/.test(r.stderr) };
}

test('a run that succeeds remembers its manifests; the next run does not load their validators', () => {
  const first = loadManifests();
  assert.is(first.code, 0, first.stderr);
  assert.ok(first.validatorLoaded);
  const entries = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as string[];
  assert.is(entries.length, 5);
  assert.is(fs.statSync(cacheFile).mode & 0o777, 0o644);
  const second = loadManifests();
  assert.is(second.code, 0, second.stderr);
  assert.not.ok(second.validatorLoaded, 'an unchanged manifest is not checked against its schema again');
});

test('a changed manifest is checked again, and an invalid one is refused and never remembered', () => {
  const doc = JSON.parse(pristine);
  doc.lxc_configs['101'].memory_mb = -1;
  fs.writeFileSync(lxcFile, JSON.stringify(doc, null, 2));
  const before = fs.readFileSync(cacheFile, 'utf8');
  const bad = loadManifests();
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /memory_mb/);
  assert.ok(bad.validatorLoaded);
  assert.is(fs.readFileSync(cacheFile, 'utf8'), before, 'a refused run writes nothing');
  fs.writeFileSync(lxcFile, pristine);
});

test('a dry run writes no cache entry', () => {
  fs.rmSync(cacheDir, { recursive: true, force: true });
  const dry = loadManifests({ PHOENIX_DRY_RUN: 'true' });
  assert.is(dry.code, 0, dry.stderr);
  assert.not.ok(fs.existsSync(cacheFile));
});

test('a cache file others can write is ignored: a planted entry does not let an invalid manifest through', () => {
  const doc = JSON.parse(pristine);
  doc.lxc_configs['101'].memory_mb = -1;
  fs.writeFileSync(lxcFile, JSON.stringify(doc, null, 2));
  const planted = validationKey('lxc', path.join(PROJECT_ROOT, 'lib', 'config-validators', 'lxc.cjs'), doc);
  fs.mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(cacheFile, JSON.stringify([planted]));
  fs.chmodSync(cacheFile, 0o666);
  const r = loadManifests();
  assert.is(r.code, 1, 'the planted entry was trusted');
  assert.match(r.stderr, /memory_mb/);
  // The same entry in a file only its owner can write is trusted: the check above is what refused it.
  fs.chmodSync(cacheFile, 0o644);
  const trusted = loadManifests();
  assert.is(trusted.code, 0, 'an owner-only cache file is read');
  fs.writeFileSync(lxcFile, pristine);
});

test.run();
