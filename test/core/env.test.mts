import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveOptions, childEnv, DEFAULT_BASE_DIR, DEFAULT_LOG_FILE, DEFAULT_LOCK_FILE } from '../../lib/core/env.mts';
import { contextFromEnvironment, withRunContext } from '../../lib/core/context.mts';

test('defaults are the bash toolkit paths; debug and dry-run are off', () => {
  const o = resolveOptions({});
  assert.is(o.baseDir, DEFAULT_BASE_DIR);
  assert.is(o.logFile, DEFAULT_LOG_FILE);
  assert.is(o.lockFile, DEFAULT_LOCK_FILE);
  assert.is(o.pveDir, '/etc/pve');
  assert.not.ok(o.debug);
  assert.is(o.parallel, 4);
  assert.equal(contextFromEnvironment({}), { dryRun: false, recordFile: undefined, timeoutMs: 600_000 });
  assert.equal(o.useLegacy, []);
});

test('environment overrides, with forgiving booleans and bad numbers ignored', () => {
  const o = resolveOptions({
    PHOENIX_BASE_DIR: '/srv/phoenix',
    PHOENIX_DRY_RUN: 'TRUE',
    PHOENIX_DEBUG: '1',
    MAIN_LOG_FILE: '/tmp/p.log',
    PHOENIX_PARALLEL: '2',
    PHOENIX_COMMAND_TIMEOUT: 'soon',
    PHOENIX_USE_LEGACY: 'managers/lxc-manager.sh, managers/vm-manager.sh',
    PHOENIX_LOCK_WAIT: '30',
  });
  assert.is(o.baseDir, '/srv/phoenix');
  assert.ok(o.debug);
  assert.is(o.logFile, '/tmp/p.log');
  assert.is(o.parallel, 2);
  assert.equal(contextFromEnvironment({ PHOENIX_DRY_RUN: 'TRUE', PHOENIX_COMMAND_TIMEOUT: 'soon' }), { dryRun: true, recordFile: undefined, timeoutMs: 600_000 });
  assert.equal(o.useLegacy, ['managers/lxc-manager.sh', 'managers/vm-manager.sh']);
  assert.is(o.lockWaitSeconds, 30);
  assert.not.ok(contextFromEnvironment({ PHOENIX_DRY_RUN: 'false' }).dryRun);
});

test('childEnv writes the resolved options and the run context back, so a child resolves the same values', () => {
  const parent = resolveOptions({ PHOENIX_BASE_DIR: '/srv/phoenix', PHOENIX_PARALLEL: '3', PHOENIX_LEGACY_DIR: '/opt/legacy' });
  // As a script run with --dry-run starts its children.
  const env = withRunContext({ dryRun: true, timeoutMs: 90_000 }, () => childEnv(parent, { LXC_CONFIG_FILE: '/x/lxc.json', DROP_ME: undefined }, { PATH: '/bin', DROP_ME: 'x', PHOENIX_RECORD: '/stale' }));
  assert.is(env.PATH, '/bin');
  assert.is(env.DROP_ME, undefined);
  assert.is(env.LXC_CONFIG_FILE, '/x/lxc.json');
  const child = resolveOptions(env);
  assert.equal({ ...child, useLegacy: [] }, { ...parent, useLegacy: [] });
  assert.equal(contextFromEnvironment(env), { dryRun: true, recordFile: undefined, timeoutMs: 90_000 });
});

test.run();
