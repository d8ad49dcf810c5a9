// hypervisor_feature_setup_auto_renewal on the simulated host: the timer and
// service units under the host root, systemd told only when something
// changed, the bash's cron job removed, dry-run, and the service's command
// line actually starting the renewal manager.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { serviceUnitText, systemdWord, timerUnitText, SERVICE_UNIT, TIMER_UNIT } from '../../lib/hypervisor/auto-renewal.mts';

const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', 'hypervisor_feature_setup_auto_renewal.mjs');
const host = createSimHost();
const work = tmpDir('phoenix-autorenew-');
const hostfs = path.join(work, 'hostfs');
const etc = path.join(work, 'etc');
fs.mkdirSync(etc, { recursive: true });
for (const file of ['phoenix_hypervisor_config.json', 'phoenix_lxc_configs.json', 'phoenix_vm_configs.json', 'phoenix_stacks_config.json', 'certificate-manifest.json']) {
  fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', file), path.join(etc, file));
}
fs.chmodSync(path.join(etc, 'certificate-manifest.json'), 0o600);

const env: Record<string, string> = { ...host.env, PHOENIX_BASE_DIR: work, PHOENIX_HOST_ROOT: hostfs, MAIN_LOG_FILE: path.join(work, 'phoenix.log'), PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock') };
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD']) delete env[key];

const unitFile = (unit: string) => path.join(hostfs, 'etc/systemd/system', unit);
const services = () => JSON.parse(fs.readFileSync(path.join(host.stateDir, 'host-services.json'), 'utf8')) as { units: Record<string, { active: string; enabled: string }> };
const systemctlCalls = (calls: CallRecord[]) => calls.filter((c) => c.tool === 'systemctl').map((c) => c.argv.join(' '));
const mutating = (calls: string[]) => calls.filter((c) => !/^(is-active|is-enabled|show)\b/.test(c));

function setup(args: string[] = []): { code: number; stdout: string; stderr: string; calls: CallRecord[] } {
  host.clearCalls();
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls: host.calls() };
}

test('--help prints the usage', () => {
  const run = setup(['--help']);
  assert.is(run.code, 0);
  assert.match(run.stdout, /Usage: hypervisor_feature_setup_auto_renewal\.sh \[HYPERVISOR_CONFIG_FILE\] \[--dry-run\]/);
  assert.equal(run.calls, []);
});

test('--dry-run writes no unit and plans the systemctl calls', () => {
  const run = setup(['--dry-run']);
  assert.is(run.code, 0, run.stderr);
  assert.not.ok(fs.existsSync(unitFile(SERVICE_UNIT)));
  assert.not.ok(fs.existsSync(unitFile(TIMER_UNIT)));
  assert.match(run.stderr, /DRY-RUN: would write .*phoenix-cert-renewal\.timer/);
  assert.match(run.stderr, /DRY-RUN: would run: systemctl enable --now phoenix-cert-renewal\.timer/);
  assert.equal(mutating(systemctlCalls(run.calls)), []);
});

test('the first run installs the timer and its service, reloads systemd and starts the timer; the bash cron job goes', () => {
  const cron = path.join(hostfs, 'etc/cron.d/phoenix-cert-renewal');
  fs.mkdirSync(path.dirname(cron), { recursive: true });
  fs.writeFileSync(cron, '0 * * * * root /usr/local/phoenix_hypervisor/bin/managers/certificate-renewal-manager.sh\n');
  const run = setup([path.join(etc, 'phoenix_hypervisor_config.json')]);
  assert.is(run.code, 0, run.stderr);
  assert.not.ok(fs.existsSync(cron), 'cron job removed');
  for (const unit of [SERVICE_UNIT, TIMER_UNIT]) assert.is(fs.statSync(unitFile(unit)).mode & 0o777, 0o644);
  const service = fs.readFileSync(unitFile(SERVICE_UNIT), 'utf8');
  assert.match(service, /^Type=oneshot$/m);
  assert.match(service, new RegExp(`^ExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\S+/scripts/managers/certificate-renewal-manager\\.mjs$`, 'm'));
  assert.match(service, new RegExp(`^Environment=PHOENIX_BASE_DIR=${work}$`, 'm'));
  assert.match(service, /^Environment=PHOENIX_LOCK_WAIT=1800$/m);
  assert.match(service, new RegExp(`^Environment=CERTIFICATE_MANIFEST_FILE=${path.join(etc, 'certificate-manifest.json')}$`, 'm'));
  assert.is(fs.readFileSync(unitFile(TIMER_UNIT), 'utf8'), timerUnitText());
  assert.equal(mutating(systemctlCalls(run.calls)), ['daemon-reload', 'enable --now phoenix-cert-renewal.timer']);
  assert.equal(services().units[TIMER_UNIT], { ...services().units[TIMER_UNIT], active: 'active', enabled: 'enabled' });
});

test('a second run changes nothing and says so', () => {
  const before = fs.statSync(unitFile(SERVICE_UNIT)).mtimeMs;
  const run = setup();
  assert.is(run.code, 0, run.stderr);
  assert.equal(mutating(systemctlCalls(run.calls)), []);
  assert.is(fs.statSync(unitFile(SERVICE_UNIT)).mtimeMs, before);
  assert.match(run.stderr, /already in place .*nothing changed/);
});

test('a hand-edited unit is rewritten; a timer someone disabled is enabled again', () => {
  fs.appendFileSync(unitFile(TIMER_UNIT), 'OnBootSec=1min\n');
  const edited = setup();
  assert.is(edited.code, 0, edited.stderr);
  assert.is(fs.readFileSync(unitFile(TIMER_UNIT), 'utf8'), timerUnitText());
  assert.equal(mutating(systemctlCalls(edited.calls)), ['daemon-reload', 'enable --now phoenix-cert-renewal.timer']);
  assert.is(host.run('systemctl', ['disable', '--now', TIMER_UNIT], { env: { PHOENIX_HOST_ROOT: hostfs } }).code, 0);
  const disabled = setup();
  assert.equal(mutating(systemctlCalls(disabled.calls)), ['enable --now phoenix-cert-renewal.timer']);
  assert.match(disabled.stderr, /enabled and started phoenix-cert-renewal\.timer/);
  assert.is(services().units[TIMER_UNIT]?.enabled, 'enabled');
});

test('a unit written by a run stopped before its daemon-reload is reloaded by the next run', () => {
  // systemd still holds an older copy of the timer than the one on disk.
  const file = path.join(host.stateDir, 'host-services.json');
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as { loaded: Record<string, string> };
  state.loaded[TIMER_UNIT] = 'a-copy-loaded-before-the-file-was-rewritten';
  fs.writeFileSync(file, JSON.stringify(state));
  const run = setup();
  assert.is(run.code, 0, run.stderr);
  assert.equal(mutating(systemctlCalls(run.calls)), ['daemon-reload']);
  assert.match(run.stderr, /reloaded systemd: phoenix-cert-renewal\.timer had changed since systemd loaded them/);
  const again = setup();
  assert.equal(mutating(systemctlCalls(again.calls)), []);
});

test("the service's command line starts the renewal manager with the unit's environment", () => {
  const service = fs.readFileSync(unitFile(SERVICE_UNIT), 'utf8');
  const unitEnv: Record<string, string> = {};
  for (const m of service.matchAll(/^Environment=(.*)$/gm)) {
    const [key, ...rest] = (m[1] as string).split('=');
    unitEnv[key as string] = rest.join('=');
  }
  const words = (/^ExecStart=(.*)$/m.exec(service)?.[1] ?? '').split(' ');
  const r = spawnSync(words[0] as string, words.slice(1), { env: { PATH: env.PATH as string, PHOENIX_SIM_STATE: host.stateDir, PHOENIX_PVE_DIR: env.PHOENIX_PVE_DIR as string, ...unitEnv }, encoding: 'utf8', timeout: 60_000 });
  // No CA container on this simulated host: the manager skips, as the bash did, and succeeds.
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /--- Starting Certificate Renewal Manager ---/);
  assert.match(r.stderr, /Step CA container \(103\) does not exist\. Skipping certificate renewal\./);
});

test('unit text: systemd quoting and the timer schedule', () => {
  assert.is(systemdWord('/usr/bin/node'), '/usr/bin/node');
  assert.is(systemdWord('/opt/my dir/x'), '"/opt/my dir/x"');
  assert.is(systemdWord('50%'), '50%%');
  const text = serviceUnitText(['/usr/bin/node', '/opt/p h/x.mjs'], [['A', 'b c']]);
  assert.match(text, /^Environment="A=b c"$/m);
  assert.match(text, /^ExecStart=\/usr\/bin\/node "\/opt\/p h\/x\.mjs"$/m);
  assert.match(timerUnitText(), /^OnCalendar=hourly$/m);
  assert.match(timerUnitText(), /^Persistent=true$/m);
  assert.match(timerUnitText(), /^WantedBy=timers\.target$/m);
});

test.run();
