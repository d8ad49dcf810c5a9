// phoenix-cli end to end on the simulated Proxmox host, with the stand-in
// bash managers of test/fixtures/legacy pinned (PHOENIX_USE_LEGACY), so these
// tests are about the CLI: its plans, its routing through the legacy bridge,
// its exit codes and what it refuses, whatever the ports of the managers do.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, spawn } from 'node:child_process';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { transcript, isMutating } from '../helpers/calls.mts';
import { assertGolden } from '../helpers/golden.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

const cli = path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs');
const fixture = path.join(PROJECT_ROOT, 'test', 'fixtures', 'legacy');
const pinned = ['managers/lxc-manager.sh', 'managers/vm-manager.sh', 'managers/portainer-manager.sh', 'managers/swarm-manager.sh', 'managers/hypervisor-manager.sh', 'health_checks/check_vm_foundation.sh'];

const host = createSimHost();
const work = tmpDir();
const baseEnv: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
  PHOENIX_LEGACY_DIR: fixture,
  PHOENIX_USE_LEGACY: pinned.join(' '),
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD']) delete baseEnv[key];

function phoenix(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], { env: { ...baseEnv, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test.before.each(() => {
  host.reset();
  fs.rmSync(path.join(host.stateDir, 'portainer-manager.args'), { force: true });
});

test('create 102 on an empty host: dependencies first, golden transcript', () => {
  const r = phoenix(['create', '102']);
  assert.is(r.code, 0, r.stderr);
  assertGolden('cli/create-102.txt', transcript(host.calls(), { mutatingOnly: true }));
  assert.is(host.runtime().guests['102']?.status ?? host.readConfig('lxc', 102) ? 'ok' : 'missing', 'ok');
});

test('a second create changes nothing', () => {
  assert.is(phoenix(['create', '102']).code, 0);
  host.clearCalls();
  const r = phoenix(['create', '102']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls().filter(isMutating), []);
  assert.match(r.stderr, /skipping 900: dependency already exists/);
});

test('--dry-run issues no mutating call and says what it would run', () => {
  const r = phoenix(['--dry-run', 'create', '102']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(host.calls().filter(isMutating), []);
  assert.match(r.stderr, /DRY RUN MODE ENABLED/);
  assert.match(r.stderr, /DRY-RUN: would run: bash \S+lxc-manager\.sh create 900/);
  assert.match(r.stderr, /nothing was changed/);
  assert.not.ok(fs.existsSync(baseEnv.PHOENIX_LOCK_FILE!), 'a dry-run takes no lock');
});

test('LetsGo builds everything, starts in boot order without templates, syncs once', () => {
  const r = phoenix(['LetsGo']);
  assert.is(r.code, 0, r.stderr);
  assertGolden('cli/letsgo.txt', transcript(host.calls(), { mutatingOnly: true }));
  assert.match(r.stderr, /'LetsGo' command complete\./);
  const syncArgs = fs.readFileSync(path.join(host.stateDir, 'portainer-manager.args'), 'utf8');
  assert.is(syncArgs.split('\n')[0], 'sync all');
  host.clearCalls();
  const again = phoenix(['LetsGo']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(transcript(host.calls(), { mutatingOnly: true }), '\n', 'a second LetsGo changes nothing');
});

test('status works: a table on stdout, before and after', () => {
  const before = phoenix(['status', '900', '101']);
  assert.is(before.code, 0, before.stderr);
  assert.match(before.stdout, /^ID\s+KIND\s+NAME\s+STATE\n900\s+lxc\s+\S+\s+absent\n101\s+lxc\s+\S+\s+absent\n$/);
  phoenix(['create', '101']);
  const after = phoenix(['status', '900', '101']);
  assert.match(after.stdout, /900\s+lxc\s+\S+\s+template/);
  assert.match(after.stdout, /101\s+lxc\s+\S+\s+stopped/);
  assert.equal(host.calls('pct').filter((c) => c.argv[0] === 'status' && c.argv[1] === '900').length >= 2, true);
});

test('start pulls stopped dependencies but never the template; stop touches only the target', () => {
  phoenix(['create', '102']);
  host.clearCalls();
  assert.is(phoenix(['start', '102']).code, 0);
  const started = host.calls('pct').filter((c) => c.argv[0] === 'start').map((c) => c.argv[1]);
  assert.equal(started, ['103', '101', '102']);
  host.clearCalls();
  assert.is(phoenix(['stop', '102']).code, 0);
  assert.equal(host.calls('pct').filter((c) => c.argv[0] === 'stop').map((c) => c.argv[1]), ['102']);
  const tmpl = phoenix(['start', '900']);
  assert.is(tmpl.code, 0);
  assert.match(tmpl.stderr, /skipping 900: templates cannot be started/);
});

test('a failing manager stops the run with its exit status and names what did not run', () => {
  host.injectFailure({ tool: 'pct', argv: ['clone', '900', '103'], times: 1, exit: 255, stderr: 'clone failed: storage is full' });
  const r = phoenix(['create', '101']);
  assert.is(r.code, 255);
  assert.match(r.stderr, /managers\/lxc-manager\.sh create 103' failed with exit code 255; not run: managers\/lxc-manager\.sh create 101/);
  assert.not.ok(host.readConfig('lxc', 101));
});

test('unknown ids: one clear error, exit 1, no call to the host', () => {
  const r = phoenix(['create', '101', '4242', 'abc']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /unknown guest ids: 4242, abc/);
  assert.equal(host.calls(), []);
});

test('phoenix-global, linked onto PATH as `phoenix`, is phoenix-cli', () => {
  const bin = tmpDir();
  fs.symlinkSync(path.join(PROJECT_ROOT, 'scripts', 'phoenix-global.mjs'), path.join(bin, 'phoenix'));
  const r = spawnSync('phoenix', ['--help'], { env: { ...baseEnv, PATH: `${bin}:${baseEnv.PATH}` }, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: phoenix/);
  const bad = spawnSync('phoenix', ['frobnicate'], { env: { ...baseEnv, PATH: `${bin}:${baseEnv.PATH}` }, encoding: 'utf8' });
  assert.is(bad.status, 1);
});

test('usage: --help exits 0 on stdout; a bad verb or missing targets exit 1', () => {
  const help = phoenix(['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: phoenix/);
  assert.is(phoenix([]).code, 1);
  assert.match(phoenix(['frobnicate', '1']).stderr, /Invalid verb 'frobnicate'/);
  assert.match(phoenix(['stop']).stderr, /requires at least one target/);
});

function legacyWithout(name: string): string {
  const dir = tmpDir();
  fs.cpSync(fixture, dir, { recursive: true });
  fs.rmSync(path.join(dir, 'bin', name));
  return dir;
}

function brokenManifests(mutate: (lxc: any, vm: any) => void, raw?: string): Record<string, string> {
  const dir = tmpDir();
  const lxc = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_lxc_configs.json'), 'utf8'));
  const vm = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_vm_configs.json'), 'utf8'));
  mutate(lxc, vm);
  fs.writeFileSync(path.join(dir, 'lxc.json'), raw ?? JSON.stringify(lxc, null, 2));
  fs.writeFileSync(path.join(dir, 'vm.json'), JSON.stringify(vm, null, 2));
  return { LXC_CONFIG_FILE: path.join(dir, 'lxc.json'), VM_CONFIG_FILE: path.join(dir, 'vm.json') };
}

test('broken JSON: file and line, exit 1, nothing changed', () => {
  const env = brokenManifests(() => {}, '{\n  "lxc_configs": {\n    "900": { "name": "x", }\n  }\n}\n');
  const r = phoenix(['create', '900'], env);
  assert.is(r.code, 1);
  assert.match(r.stderr, new RegExp(`${env.LXC_CONFIG_FILE}.*line 3`));
  assert.equal(host.calls(), []);
});

test('wrong types: the JSON pointer and the expectation, exit 1, nothing changed', () => {
  const env = brokenManifests((lxc) => (lxc.lxc_configs['101'].memory_mb = '2048'));
  const r = phoenix(['LetsGo'], env);
  assert.is(r.code, 1);
  assert.match(r.stderr, /at \/lxc_configs\/101\/memory_mb: expected integer/);
  assert.equal(host.calls(), []);
});

test('a dependency cycle is named, exit 1, nothing changed', () => {
  const env = brokenManifests((lxc) => (lxc.lxc_configs['103'].dependencies = ['102']));
  const r = phoenix(['create', '102'], env);
  assert.is(r.code, 1);
  assert.match(r.stderr, /cycle: (\d+ -> )+\d+/);
  assert.equal(host.calls().filter(isMutating), []);
});

test('manifest overrides from the environment reach the child managers', () => {
  const env = brokenManifests((lxc) => (lxc.lxc_configs['103'].memory_mb = 3072));
  assert.is(phoenix(['create', '103'], env).code, 0);
  const set = host.calls('pct').find((c) => c.argv[0] === 'set' && c.argv[1] === '103');
  assert.ok(set?.argv.includes('3072'), 'the child read the overridden LXC manifest');
});

test('sync passes --reset-portainer on, as argument and environment', () => {
  assert.is(phoenix(['sync', 'all', '--reset-portainer']).code, 0);
  const lines = fs.readFileSync(path.join(host.stateDir, 'portainer-manager.args'), 'utf8').split('\n');
  assert.is(lines[0], 'sync all --reset-portainer');
  assert.is(lines[1], 'reset=true');
  assert.is(lines[2], `hv=${path.join(PROJECT_ROOT, 'etc', 'phoenix_hypervisor_config.json')}`);
});

test('a second run while one holds the host lock exits 75 and changes nothing', async () => {
  host.setLatency({ pct: 400 });
  const first = spawn(process.execPath, [cli, 'create', '103'], { env: baseEnv, stdio: 'ignore' });
  const firstDone = new Promise<number>((resolve) => first.on('close', (code) => resolve(code ?? -1)));
  // wait until the first run holds the lock
  for (let i = 0; i < 100 && !fs.existsSync(baseEnv.PHOENIX_LOCK_FILE!); i++) await new Promise((r) => setTimeout(r, 50));
  const second = phoenix(['create', '101']);
  assert.is(second.code, 75);
  assert.match(second.stderr, /another Phoenix run holds/);
  assert.is(await firstDone, 0);
  host.setLatency({});
  assert.not.ok(host.readConfig('lxc', 101), 'the refused run created nothing');
});

test('a script the plan needs is missing: named up front, exit 127, nothing changed', () => {
  const r = phoenix(['create', '103'], { PHOENIX_USE_LEGACY: 'managers/lxc-manager.sh', PHOENIX_LEGACY_DIR: tmpDir() });
  assert.is(r.code, 127);
  assert.match(r.stderr, /cannot run this plan, nothing was changed: PHOENIX_USE_LEGACY asks for the bash managers\/lxc-manager\.sh, but there is none/);
  assert.equal(host.calls().filter(isMutating), []);
});

test('LetsGo without the sync script it ends with: named up front, exit 127, nothing changed', () => {
  const r = phoenix(['LetsGo'], { PHOENIX_USE_LEGACY: pinned.filter((n) => !n.includes('portainer')).join(' ') + ' managers/portainer-manager.sh', PHOENIX_LEGACY_DIR: legacyWithout('managers/portainer-manager.sh') });
  assert.is(r.code, 127, r.stderr);
  assert.match(r.stderr, /cannot run this plan, nothing was changed: PHOENIX_USE_LEGACY asks for the bash managers\/portainer-manager\.sh, but there is none/);
  assert.equal(host.calls().filter(isMutating), []);
});

test('PHOENIX_RECORD keeps the plan of a dry-run as JSON lines', () => {
  const record = path.join(work, 'plan.jsonl');
  fs.rmSync(record, { force: true });
  assert.is(phoenix(['--dry-run', 'create', '103'], { PHOENIX_RECORD: record }).code, 0);
  const entries = fs.readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const planned = entries.filter((e) => e.skipped).map((e) => e.args.slice(-2).join(' '));
  assert.equal(planned, ['create 900', 'create 103']);
});

test.after(() => host.dispose());
test.run();
