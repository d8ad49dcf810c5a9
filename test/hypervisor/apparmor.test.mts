// The AppArmor steps of `phoenix setup` (profiles, home tunables), run as
// scripts on the simulated host (test/simhost/hostsvc/apparmor.mts): no
// profile directory → skipped, not fatal; a profile parsed before it is
// installed, loaded only when it changed; the distro's tunables/home kept;
// second runs and dry-runs that change nothing. What Phoenix writes is also
// parsed by the real apparmor_parser (parse only, no kernel needed).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { ensureSimNode } from '../simhost/hostsvc/kernel-state.mts';
import { loadApparmor } from '../simhost/hostsvc/apparmor.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { homeDText, nestingText, renameProfile } from '../../lib/hypervisor/apparmor.mts';
import { treeSnapshot } from '../helpers/host-tree.mts';

const REAL_PARSER = ['/sbin/apparmor_parser', '/usr/sbin/apparmor_parser'].find((f) => fs.existsSync(f));
const host = createSimHost();
const work = tmpDir('phoenix-apparmor-');
const base = path.join(work, 'base');
const hostfs = path.join(host.stateDir, 'hostfs');
const onHost = (p: string) => path.join(hostfs, p);
const FILE = 'phoenix_hypervisor_config.json';

const PROFILE = `# Phoenix container profile
#include <tunables/global>
#include <tunables/nesting>

profile lxc-phoenix flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/lxc/container-base>

  # nested containers
  mount fstype=proc -> /var/lib/lxc/*/rootfs/proc/,
  mount fstype=sysfs -> /var/lib/lxc/*/rootfs/sys/,
  deny /sys/firmware/efi/efivars/** rwklx,
  @{HOME}/.phoenix/** r,
}
`;

function readExample(file: string): any {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', file), 'utf8'));
}

let env: Record<string, string> = {};

function fresh(edit: (hv: any) => void = () => {}, profiles?: Record<string, string>): void {
  host.reset();
  ensureSimNode(host.stateDir, { ...host.env, PHOENIX_HOST_ROOT: '' });
  host.clearCalls();
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(path.join(base, 'etc'), { recursive: true });
  const hv = readExample(FILE);
  edit(hv);
  const etc = path.join(base, 'etc');
  fs.writeFileSync(path.join(etc, FILE), `${JSON.stringify(hv, null, 2)}\n`);
  for (const f of ['phoenix_lxc_configs.json', 'phoenix_vm_configs.json', 'phoenix_stacks_config.json', 'certificate-manifest.json']) fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', f), path.join(etc, f));
  if (profiles) {
    fs.mkdirSync(path.join(etc, 'apparmor'));
    for (const [name, text] of Object.entries(profiles)) fs.writeFileSync(path.join(etc, 'apparmor', name), text);
  }
  env = { ...host.env, PHOENIX_BASE_DIR: base, HYPERVISOR_CONFIG_FILE: path.join(etc, FILE), LXC_CONFIG_FILE: path.join(etc, 'phoenix_lxc_configs.json'), VM_CONFIG_FILE: path.join(etc, 'phoenix_vm_configs.json'), STACKS_CONFIG_FILE: path.join(etc, 'phoenix_stacks_config.json'), CERTIFICATE_MANIFEST_FILE: path.join(etc, 'certificate-manifest.json'), PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'), MAIN_LOG_FILE: path.join(work, 'phoenix.log') };
  delete env.PHOENIX_DRY_RUN;
  delete env.PHOENIX_HOST_ROOT;
}

function script(name: string, args: string[] = []): { code: number; out: string } {
  const file = path.join(PROJECT_ROOT, 'scripts', 'hypervisor_setup', `${name}.mjs`);
  const r = spawnSync(process.execPath, [file, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 128, out: `${r.stdout}${r.stderr}` };
}

const SETUP = 'hypervisor_feature_setup_apparmor';
const TUNABLES = 'hypervisor_feature_fix_apparmor_tunables';

function changing(calls: CallRecord[]): string[] {
  return calls
    .filter((c) => (c.tool === 'apparmor_parser' && !c.argv.includes('-Q')) || (c.tool === 'systemctl' && !['is-active', 'is-enabled', 'show', 'status'].includes(c.argv[0] ?? '')))
    .map((c) => [c.tool, ...c.argv.map((a) => a.replace(hostfs, ''))].join(' '));
}

function snapshot(): Map<string, string> {
  return treeSnapshot(hostfs);
}

// ---------------------------------------------------------------- pure

test('renameProfile: only the name changes, flags and attachment kept', () => {
  assert.is(renameProfile('profile lxc-phoenix flags=(attach_disconnected) {\n}\n', 'lxc_phoenix_v2'), 'profile lxc_phoenix_v2 flags=(attach_disconnected) {\n}\n');
  assert.is(renameProfile('profile foo /usr/bin/foo {\n  profile child {\n  }\n}\n', 'bar'), 'profile bar /usr/bin/foo {\n  profile child {\n  }\n}\n');
  assert.is(renameProfile('profile foo{\n}\n', 'bar'), 'profile bar{\n}\n');
});

// ---------------------------------------------------------------- profiles

test('setup_apparmor: no <base>/etc/apparmor → skipped with the reason, exit 0, nothing loaded', () => {
  fresh();
  const r = script(SETUP);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /skipped, no AppArmor profiles to install \(.*etc\/apparmor does not exist/);
  assert.equal(changing(host.calls()), []);
  assert.not.ok(fs.existsSync(onHost('/etc/apparmor.d/tunables/nesting')));
});

test('setup_apparmor: profiles checked, installed renamed, loaded once; second run and dry-run change nothing', () => {
  fresh(() => {}, { 'lxc-phoenix-v2': PROFILE });
  let before = snapshot();
  let r = script(SETUP, ['--dry-run']);
  assert.is(r.code, 0, r.out);
  assert.equal(changing(host.calls()), []);
  assert.equal(snapshot(), before);

  r = script(SETUP);
  assert.is(r.code, 0, r.out);
  const installed = fs.readFileSync(onHost('/etc/apparmor.d/lxc-phoenix-v2'), 'utf8');
  assert.match(installed, /^profile lxc_phoenix_v2 flags=\(attach_disconnected,mediate_deleted\) \{$/m);
  assert.is(fs.readFileSync(onHost('/etc/apparmor.d/tunables/nesting'), 'utf8'), nestingText(['lxc_phoenix_v2']));
  // Parsed before installing (-Q -K on stdin), then one replace, one reload.
  assert.ok(host.calls('apparmor_parser').some((c) => c.argv.join(' ') === '-Q -K'));
  assert.equal(changing(host.calls()), ['apparmor_parser -r /etc/apparmor.d/lxc-phoenix-v2', 'systemctl reload-or-restart apparmor.service']);
  assert.ok(loadApparmor(host.stateDir).loaded.lxc_phoenix_v2);

  host.clearCalls();
  before = snapshot();
  r = script(SETUP);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /already in place; nothing changed/);
  assert.equal(changing(host.calls()), []);
  assert.equal(snapshot(), before);
});

test('setup_apparmor: one profile that does not parse → fails, nothing installed or loaded', () => {
  fresh(() => {}, { 'lxc-phoenix-v2': PROFILE, 'lxc-zz-broken': 'profile broken {\n  /tmp/** rw\n}\n' });
  const r = script(SETUP);
  assert.is.not(r.code, 0, r.out);
  assert.match(r.out, /lxc-zz-broken does not parse: AppArmor parser error at line 3: syntax error, unexpected TOK_CLOSE, expecting TOK_END_OF_RULE/, r.out);
  assert.not.ok(fs.existsSync(onHost('/etc/apparmor.d/lxc-phoenix-v2')));
  assert.not.ok(fs.existsSync(onHost('/etc/apparmor.d/tunables/nesting')));
  assert.equal(changing(host.calls()), []);
});

// ---------------------------------------------------------------- tunables

test('fix_apparmor_tunables: a stock node changes nothing; the bash overwrite gets its include back, other bytes kept', () => {
  fresh();
  const stock = fs.readFileSync(onHost('/etc/apparmor.d/tunables/home'), 'utf8');
  let r = script(TUNABLES);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /already in place; nothing changed/);
  assert.is(fs.readFileSync(onHost('/etc/apparmor.d/tunables/home'), 'utf8'), stock);

  const bash = '# This tunable defines the locations that AppArmor considers to be user home directories.\n@{HOME}=/home/*/ /root/\n\n# This tunable defines the parent directory for home directories.\n@{HOMEDIRS}=/home/\n';
  fs.writeFileSync(onHost('/etc/apparmor.d/tunables/home'), bash);
  r = script(TUNABLES);
  assert.is(r.code, 0, r.out);
  const fixed = fs.readFileSync(onHost('/etc/apparmor.d/tunables/home'), 'utf8');
  assert.ok(fixed.startsWith(bash), fixed);
  assert.match(fixed, /\ninclude <tunables\/home\.d>\n/);
  host.clearCalls();
  r = script(TUNABLES);
  assert.match(r.out, /nothing changed/);
  assert.is(fs.readFileSync(onHost('/etc/apparmor.d/tunables/home'), 'utf8'), fixed);
});

test('fix_apparmor_tunables: apparmor.home_dirs goes to tunables/home.d/phoenix; dry-run writes nothing; emptied → removed', () => {
  fresh((hv) => (hv.apparmor = { home_dirs: ['/srv/home/'] }));
  const before = snapshot();
  let r = script(TUNABLES, ['--dry-run']);
  assert.is(r.code, 0, r.out);
  assert.equal(snapshot(), before);
  r = script(TUNABLES);
  assert.is(r.code, 0, r.out);
  assert.is(fs.readFileSync(onHost('/etc/apparmor.d/tunables/home.d/phoenix'), 'utf8'), homeDText(['/srv/home/']));
  r = script(TUNABLES);
  assert.match(r.out, /nothing changed/, r.out);
  fs.writeFileSync(env.HYPERVISOR_CONFIG_FILE!, fs.readFileSync(env.HYPERVISOR_CONFIG_FILE!, 'utf8').replace('"/srv/home/"', ''));
  r = script(TUNABLES);
  assert.is(r.code, 0, r.out);
  assert.not.ok(fs.existsSync(onHost('/etc/apparmor.d/tunables/home.d/phoenix')));
});

// ---------------------------------------------------------------- the real parser

test('the real apparmor_parser (parse only) accepts the tree Phoenix writes: profile, nesting, home.d', () => {
  if (REAL_PARSER === undefined) {
    console.log('  skipped: no apparmor_parser on this machine (Debian package apparmor)');
    return;
  }
  fresh((hv) => (hv.apparmor = { home_dirs: ['/srv/home/'] }), { 'lxc-phoenix-v2': PROFILE });
  let run = script(TUNABLES);
  assert.is(run.code, 0, run.out);
  run = script(SETUP);
  assert.is(run.code, 0, run.out);
  const tree = onHost('/etc/apparmor.d');
  const real = (args: string[], input?: string) => spawnSync(REAL_PARSER, ['-Q', '-K', '-b', tree, ...args], { encoding: 'utf8', input: input ?? '', timeout: 60_000 });
  let r = real([path.join(tree, 'lxc-phoenix-v2')]);
  assert.is(r.status, 0, r.stderr);
  // The home tunables with Phoenix's addition: a profile using both variables parses.
  r = real([], 'include <tunables/global>\nprofile probe {\n  @{HOME}/x r,\n  @{HOMEDIRS}/ r,\n}\n');
  assert.is(r.status, 0, r.stderr);
  // The real parser refuses what the simulated one refuses (same line, same words).
  r = real([], 'profile broken {\n  /tmp/** rw\n}\n');
  assert.is(r.status, 1);
  assert.match(r.stderr, /AppArmor parser error at line 3: syntax error, unexpected TOK_CLOSE, expecting TOK_END_OF_RULE/);
  r = real([], 'profile p {\n  @{NOPE}/x r,\n}\n');
  assert.is(r.status, 1);
  assert.match(r.stderr, /Found reference to variable NOPE, but is never declared/);
  const sim = host.run('apparmor_parser', ['-Q', '-K'], { input: 'profile p {\n  @{NOPE}/x r,\n}\n' });
  assert.is(sim.code, 1);
  assert.match(sim.stderr, /Found reference to variable NOPE, but is never declared/);
});

test.after(() => host.dispose());
test.run();
