// LetsGo end to end on the simulated host with the ported managers, firewall
// generator and orchestration. The features and the CT application scripts
// are pinned to the stand-ins of test/fixtures/legacy: the simulated guests
// run nothing, so a ported feature could not get past its own checks there,
// and the 101-103 application scripts have no port yet.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from './simhost/index.mts';
import { tmpDir } from './helpers/tmp.mts';
import { PROJECT_ROOT } from '../lib/bridge.mts';

const cli = path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs');
const fixtureBin = path.join(PROJECT_ROOT, 'test', 'fixtures', 'legacy', 'bin');
const standIns = ['lxc_setup', 'vm_features']
  .flatMap((dir) => fs.readdirSync(path.join(fixtureBin, dir)).filter((f) => /^(phoenix_hypervisor_feature_|feature_)/.test(f)).map((f) => `${dir}/${f}`))
  .concat(['101', '102', '103'].map((id) => `phoenix_hypervisor_lxc_${id}.sh`));

const host = createSimHost();
const work = tmpDir();
const env: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
  PHOENIX_LEGACY_DIR: path.join(PROJECT_ROOT, 'test', 'fixtures', 'legacy'),
  PHOENIX_USE_LEGACY: standIns.join(' '),
  PHOENIX_START_RETRY_DELAY_MS: '100',
  PHOENIX_POLL_INTERVAL_MS: '100',
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'PHOENIX_DRY_RUN']) delete env[key];

interface Recorded {
  script: string;
  cmd: string;
  args: string[];
  mutating: boolean;
  skipped: boolean;
}

function letsGo(record: string): { code: number; stderr: string; commands: Recorded[] } {
  const r = spawnSync(process.execPath, [cli, 'LetsGo'], { env: { ...env, PHOENIX_RECORD: record }, encoding: 'utf8' });
  const commands = fs.existsSync(record) ? fs.readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Recorded) : [];
  return { code: r.status ?? -1, stderr: r.stderr, commands };
}

test('LetsGo builds and starts every guest from nothing; a second run changes nothing', () => {
  const first = letsGo(path.join(work, 'first.jsonl'));
  assert.is(first.code, 0, first.stderr.split('\n').filter((l) => /ERROR/.test(l)).join('\n'));
  for (const id of ['103', '101', '102']) assert.is(host.run('pct', ['status', id]).stdout.trim(), 'status: running', `CT ${id}`);
  for (const id of ['1001', '1002']) assert.is(host.run('qm', ['status', id]).stdout.trim(), 'status: running', `VM ${id}`);
  assert.match(host.readConfigText('lxc', 900) ?? '', /^template: 1$/m);
  assert.match(host.readConfigText('qemu', 9000) ?? '', /^template: 1$/m);
  for (const id of ['101', '102', '103', '1001', '1002']) assert.ok(fs.existsSync(path.join(host.stateDir, 'pve', 'firewall', `${id}.fw`)), `${id}.fw written`);
  // Every command of every process of the run went through the runner and was recorded.
  assert.ok(first.commands.some((c) => c.cmd === 'pct' && c.args[0] === 'clone' && c.args[2] === '102'));

  const second = letsGo(path.join(work, 'second.jsonl'));
  assert.is(second.code, 0, second.stderr);
  const changes = second.commands.filter((c) => c.mutating && !c.skipped).map((c) => `${c.script}: ${c.cmd} ${c.args.join(' ')}`);
  assert.equal(changes, [], 'the second LetsGo issues no mutating command');
});

test.after(() => host.dispose());
test.run();
