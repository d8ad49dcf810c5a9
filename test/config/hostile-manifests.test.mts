// Manifests an adversary (or a slip of the keyboard) might hand Phoenix:
// files that are no JSON file at all, JSON that would exhaust the loader,
// and paths that leave the place they belong. Each one must be refused with
// exit 1 and one clear error naming the file and the JSON pointer, without
// a stack trace, and without one change to the simulated host. (Where the
// schemas already refuse a form, such as a relative mount source, either
// message is accepted: the semantic checks back them up.)

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from '../simhost/index.mts';
import { cliEnv } from '../helpers/run-phoenix.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { MANIFEST_FILES, type ManifestKind } from '../../lib/config/load.mts';

type Json = any; // manifests are edited freely below

const host = createSimHost();
const work = tmpDir('phoenix-hostile-');
const base = path.join(work, 'base');
const etc = path.join(base, 'etc');
fs.cpSync(path.join(PROJECT_ROOT, 'etc'), etc, { recursive: true });
const pristine = new Map<ManifestKind, string>(
  (Object.keys(MANIFEST_FILES) as ManifestKind[]).map((kind) => [kind, fs.readFileSync(path.join(etc, MANIFEST_FILES[kind]), 'utf8')]),
);
// The renewal manager refuses a manifest with commands that others may write.
for (const kind of pristine.keys()) fs.chmodSync(path.join(etc, MANIFEST_FILES[kind]), 0o644);
const env = cliEnv(host, work, base);

const SCRIPTS = {
  create: [path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs'), 'create', '101'],
  renew: [path.join(PROJECT_ROOT, 'scripts', 'managers', 'certificate-renewal-manager.mjs')],
  sync: [path.join(PROJECT_ROOT, 'scripts', 'managers', 'portainer-manager.mjs'), 'sync', 'all'],
} as const;

/** A digest of everything the simulated host keeps (the call log aside: read-only queries may be recorded). */
function hostDigest(): string {
  const hash = crypto.createHash('sha256');
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      const rel = path.relative(host.stateDir, file);
      if (rel === 'calls.jsonl' || name.endsWith('.lock')) continue;
      const stat = fs.lstatSync(file);
      hash.update(`${rel}\0${stat.mode}\0`);
      if (stat.isSymbolicLink()) hash.update(fs.readlinkSync(file));
      else if (stat.isDirectory()) walk(file);
      else if (stat.isFile()) hash.update(fs.readFileSync(file));
    }
  };
  walk(host.stateDir);
  return hash.digest('hex');
}

function manifestFile(kind: ManifestKind): string {
  return path.join(etc, MANIFEST_FILES[kind]);
}

function restore(): void {
  for (const [kind, text] of pristine) {
    const file = manifestFile(kind);
    fs.rmSync(file, { recursive: true, force: true });
    fs.writeFileSync(file, text, { mode: 0o644 });
    fs.chmodSync(file, 0o644);
  }
}

/** Replace a manifest with an edited copy of the example. */
function edit(kind: ManifestKind, change: (doc: Json) => void): void {
  const doc = JSON.parse(pristine.get(kind) as string);
  change(doc);
  fs.writeFileSync(manifestFile(kind), JSON.stringify(doc, null, 2));
}

interface Case {
  name: string;
  script: keyof typeof SCRIPTS;
  kind: ManifestKind;
  /** Puts the hostile manifest in place. */
  setup: () => void;
  /** The JSON pointer the error must name ('' for the whole file). */
  pointer: string;
  message: RegExp;
}

function refused(c: Case): void {
  restore();
  c.setup();
  const before = hostDigest();
  const started = Date.now();
  const [script, ...args] = SCRIPTS[c.script];
  const r = spawnSync(process.execPath, [script, ...args], { env, encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  const seconds = (Date.now() - started) / 1000;
  assert.is(r.signal, null, `${c.name}: killed after ${seconds}s (hung)`);
  assert.is(r.status, 1, `${c.name}: exit ${r.status}\n${r.stderr}`);
  const errors = r.stderr.split('\n').filter((line) => /\[(ERROR|FATAL)\]/.test(line));
  assert.ok(errors.length >= 1, `${c.name}: no error line\n${r.stderr}`);
  // SHOW_REFUSALS=1: each refusal as the operator reads it.
  if (process.env.SHOW_REFUSALS) process.stderr.write(`${c.name}:\n  ${errors.join('\n  ')}\n`);
  const file = manifestFile(c.kind);
  const where = c.pointer === '' ? `${file}: ` : `${file} at ${c.pointer}:`;
  assert.ok(r.stderr.includes(where), `${c.name}: expected "${where}" in\n${r.stderr}`);
  assert.match(r.stderr, c.message, `${c.name}\n${r.stderr}`);
  assert.not.match(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `${c.name}: stack trace\n${r.stderr}`);
  assert.not.match(r.stderr, /Maximum call stack|TypeError|RangeError/, `${c.name}: crash\n${r.stderr}`);
  assert.is(hostDigest(), before, `${c.name}: the simulated host changed`);
  restore();
}

const lxcMount = (change: (mount: Json) => void) => (): void =>
  edit('lxc', (d) => {
    d.lxc_configs['101'].mount_points[0] = { ...d.lxc_configs['101'].mount_points[0] };
    change(d.lxc_configs['101'].mount_points[0]);
  });

const CASES: Case[] = [
  // ------------------------------------------------ the loader
  {
    name: 'a FIFO instead of the LXC manifest',
    script: 'create',
    kind: 'lxc',
    setup: () => {
      fs.rmSync(manifestFile('lxc'));
      spawnSync('mkfifo', [manifestFile('lxc')]);
    },
    pointer: '',
    message: /named pipe \(FIFO\); a manifest must be a regular file/,
  },
  { name: 'a directory', script: 'create', kind: 'lxc', setup: () => (fs.rmSync(manifestFile('lxc')), fs.mkdirSync(manifestFile('lxc'))), pointer: '', message: /is a directory/ },
  {
    name: 'a symbolic link loop',
    script: 'create',
    kind: 'lxc',
    setup: () => {
      fs.rmSync(manifestFile('lxc'));
      fs.symlinkSync(manifestFile('lxc'), manifestFile('lxc'));
    },
    pointer: '',
    message: /symbolic link loop/,
  },
  { name: 'a link to a device', script: 'create', kind: 'lxc', setup: () => (fs.rmSync(manifestFile('lxc')), fs.symlinkSync('/dev/zero', manifestFile('lxc'))), pointer: '', message: /is a device/ },
  { name: 'an empty file', script: 'create', kind: 'lxc', setup: () => fs.writeFileSync(manifestFile('lxc'), ''), pointer: '', message: /file is empty/ },
  {
    name: 'invalid UTF-8',
    script: 'create',
    kind: 'lxc',
    setup: () => fs.writeFileSync(manifestFile('lxc'), Buffer.concat([Buffer.from('{\n  "lxc_configs": {"x'), Buffer.from([0xc3, 0x28]), Buffer.from('": {}}}')])),
    pointer: '',
    message: /not valid UTF-8 at line 2/,
  },
  { name: 'a byte order mark', script: 'create', kind: 'lxc', setup: () => fs.writeFileSync(manifestFile('lxc'), `\ufeff${pristine.get('lxc')}`), pointer: '', message: /byte order mark/ },
  {
    name: 'a duplicate container id',
    script: 'create',
    kind: 'lxc',
    setup: () => fs.writeFileSync(manifestFile('lxc'), (pristine.get('lxc') as string).replace('"lxc_configs": {', '"lxc_configs": {\n    "101": {},')),
    pointer: '/lxc_configs/101',
    message: /duplicate key "101"/,
  },
  { name: 'a top-level array', script: 'create', kind: 'lxc', setup: () => fs.writeFileSync(manifestFile('lxc'), '[1, 2]'), pointer: '', message: /expected object, got array/ },
  {
    name: 'nesting 10000 levels deep',
    script: 'create',
    kind: 'lxc',
    setup: () => fs.writeFileSync(manifestFile('lxc'), `{"lxc_configs": {"101": {"x": ${'['.repeat(10_000)}${']'.repeat(10_000)}}}}`),
    pointer: `/lxc_configs/101/x${'/0'.repeat(61)}`,
    message: /nested more than 64 levels deep/,
  },
  {
    name: 'a 50 MiB file',
    script: 'create',
    kind: 'lxc',
    setup: () => {
      fs.writeFileSync(manifestFile('lxc'), '{}');
      fs.truncateSync(manifestFile('lxc'), 50 * 1024 * 1024);
    },
    pointer: '',
    message: /at most 16777216 \(16 MiB\)/,
  },
  { name: 'truncated JSON', script: 'create', kind: 'lxc', setup: () => fs.writeFileSync(manifestFile('lxc'), '{\n  "lxc_configs": {\n    "101": {'), pointer: '', message: /invalid JSON at line 3, column \d+: .*\(in \/lxc_configs\/101\)/ },
  {
    name: 'a dependency cycle',
    script: 'create',
    kind: 'lxc',
    setup: () => edit('lxc', (d) => (d.lxc_configs['900'].dependencies = ['101'])),
    pointer: '/lxc_configs/900/dependencies/0',
    message: /dependency cycle: .*900 -> 101/,
  },
  // ------------------------------------------------ shapes and references
  { name: 'a dependency on a guest no manifest defines', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['101'].dependencies = ['103', '104'])), pointer: '/lxc_configs/101/dependencies/1', message: /dependency 104 names no container or VM/ },
  { name: 'a clone source no manifest defines', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['101'].clone_from_ctid = '905')), pointer: '/lxc_configs/101/clone_from_ctid', message: /clone source 905 is not defined/ },
  { name: 'a container id that is no number', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['gateway'] = d.lxc_configs['101'])), pointer: '/lxc_configs/gateway', message: /expected a guest id as a string of digits, 100 to 999999999/ },
  { name: 'a container id beyond Proxmox\'s range', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['1000000000'] = { ...d.lxc_configs['101'], network_config: { ...d.lxc_configs['101'].network_config, ip: '10.0.0.99/24' } })), pointer: '/lxc_configs/1000000000', message: /invalid key "1000000000": expected a guest id/ },
  { name: 'null where the containers belong', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs = null)), pointer: '/lxc_configs', message: /expected object, got null/ },
  { name: 'a negative memory size', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['101'].memory_mb = -512)), pointer: '/lxc_configs/101/memory_mb', message: /expected a number >= 16, got number -512/ },
  { name: 'a memory size given as text', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['101'].memory_mb = '1024; reboot')), pointer: '/lxc_configs/101/memory_mb', message: /expected integer, got string/ },
  { name: 'an address with an octet over 255', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['101'].network_config.ip = '10.0.0.300/24')), pointer: '/lxc_configs/101/network_config/ip', message: /expected dhcp, manual, or an IPv4 address with prefix length/ },
  { name: 'a firewall port out of range', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => (d.lxc_configs['101'].firewall.rules[0].port = '80,65536')), pointer: '/lxc_configs/101/firewall/rules/0/port', message: /expected a port, a range .* got string "80,65536"/ },
  { name: 'an unknown feature', script: 'create', kind: 'lxc', setup: () => edit('lxc', (d) => d.lxc_configs['101'].features.push('../../bin/sh')), pointer: '/lxc_configs/101/features/3', message: /expected one of "base_setup"/ },
  { name: 'a VM with no cores', script: 'create', kind: 'vm', setup: () => edit('vm', (d) => (d.vms[0].cores = 0)), pointer: '/vms/0/cores', message: /expected a number >= 1, got number 0/ },
  // ------------------------------------------------ bind mounts
  { name: 'a mount source with ..', script: 'create', kind: 'lxc', setup: lxcMount((m) => (m.host_path = '/quickOS/lxc-persistent-data/../../etc')), pointer: '/lxc_configs/101/mount_points/0/host_path', message: /contains a "\.\." segment/ },
  { name: 'a relative mount source', script: 'create', kind: 'lxc', setup: lxcMount((m) => (m.host_path = 'quickOS/lxc-persistent-data/101/logs')), pointer: '/lxc_configs/101/mount_points/0/host_path', message: /is relative; expected an absolute path|expected an absolute path/ },
  { name: 'a mount of /etc', script: 'create', kind: 'lxc', setup: lxcMount((m) => (m.host_path = '/etc/ssh')), pointer: '/lxc_configs/101/mount_points/0/host_path', message: /system tree \/etc/ },
  { name: 'a mount of the whole host', script: 'create', kind: 'lxc', setup: lxcMount((m) => (m.host_path = '//')), pointer: '/lxc_configs/101/mount_points/0/host_path', message: /shared top-level directory/ },
  { name: 'a mount holding the secrets', script: 'create', kind: 'lxc', setup: lxcMount((m) => (m.host_path = '/etc/phoenix')), pointer: '/lxc_configs/101/mount_points/0/host_path', message: /holds \/etc\/phoenix\/secrets/ },
  { name: 'a newline in a mount source', script: 'create', kind: 'lxc', setup: lxcMount((m) => (m.host_path = '/quickOS/x\nlxc.mount.entry: /')), pointer: '/lxc_configs/101/mount_points/0/host_path', message: /control character|expected an absolute path/ },
  { name: 'a relative mount target', script: 'create', kind: 'lxc', setup: lxcMount((m) => (m.container_path = 'var/log/nginx')), pointer: '/lxc_configs/101/mount_points/0/container_path', message: /is relative|expected an absolute path/ },
  // ------------------------------------------------ certificates
  { name: 'a certificate path with ..', script: 'renew', kind: 'certificates', setup: () => edit('certificates', (d) => (d[0].cert_path = '/quickOS/lxc-persistent-data/../../../cert.crt')), pointer: '/0/cert_path', message: /"\.\." segment/ },
  { name: 'a relative key path', script: 'renew', kind: 'certificates', setup: () => edit('certificates', (d) => (d[1].key_path = 'ssl/client.key')), pointer: '/1/key_path', message: /is relative|expected an absolute path/ },
  { name: 'a key outside the data roots', script: 'renew', kind: 'certificates', setup: () => edit('certificates', (d) => (d[2].key_path = '/etc/cron.d/traefik')), pointer: '/2/key_path', message: /outside the directories certificates go to/ },
  { name: 'a guest path with ..', script: 'renew', kind: 'certificates', setup: () => edit('certificates', (d) => (d[4].guest_key_path = '/etc/phoenix/../shadow')), pointer: '/4/guest_key_path', message: /"\.\." segment/ },
  { name: 'a root CA file with ..', script: 'renew', kind: 'hypervisor', setup: () => edit('hypervisor', (d) => (d.step_ca.root_ca_file = '/etc/phoenix/ca/../../../root_ca.crt')), pointer: '/step_ca/root_ca_file', message: /"\.\." segment/ },
  { name: 'a provisioner password in a bind mount', script: 'renew', kind: 'hypervisor', setup: () => edit('hypervisor', (d) => (d.step_ca.provisioner_password_file = '/quickOS/lxc-persistent-data/101/ssl/pw')), pointer: '/step_ca/provisioner_password_file', message: /where a guest can read or replace it/ },
  // ------------------------------------------------ Portainer and stacks
  { name: 'an admin password file with ..', script: 'sync', kind: 'hypervisor', setup: () => edit('hypervisor', (d) => (d.portainer_api.admin_password_file = '/etc/phoenix/secrets/../../../outside')), pointer: '/portainer_api/admin_password_file', message: /"\.\." segment/ },
  { name: 'an admin password file in /etc', script: 'sync', kind: 'hypervisor', setup: () => edit('hypervisor', (d) => (d.portainer_api.admin_password_file = '/etc/shadow')), pointer: '/portainer_api/admin_password_file', message: /system tree \/etc/ },
  { name: 'an admin password file on shared storage', script: 'sync', kind: 'hypervisor', setup: () => edit('hypervisor', (d) => (d.portainer_api.admin_password_file = '/mnt/pve/pw')), pointer: '/portainer_api/admin_password_file', message: /inside mount_point_base/ },
  { name: 'a relative stacks directory', script: 'sync', kind: 'hypervisor', setup: () => edit('hypervisor', (d) => (d.core_paths.stacks_dir = 'stacks')), pointer: '/core_paths/stacks_dir', message: /is relative/ },
  { name: 'a compose file with ..', script: 'sync', kind: 'stacks', setup: () => edit('stacks', (d) => (d.docker_stacks.whoami_service.compose_file_path = '../../../../etc/passwd')), pointer: '/docker_stacks/whoami_service/compose_file_path', message: /"\.\." segment/ },
  { name: 'a compose file elsewhere on the host', script: 'sync', kind: 'stacks', setup: () => edit('stacks', (d) => (d.docker_stacks.whoami_service.compose_file_path = '/root/compose.yml')), pointer: '/docker_stacks/whoami_service/compose_file_path', message: /outside the directories compose templates may come from/ },
  {
    name: 'a stack file source with ..',
    script: 'sync',
    kind: 'stacks',
    setup: () => edit('stacks', (d) => (d.docker_stacks.whoami_service.environments.production.files = [{ source: 'configs/../../../../root/.ssh/id_rsa', destination_in_container: '/app/key' }])),
    pointer: '/docker_stacks/whoami_service/environments/production/files/0/source',
    message: /"\.\." segment/,
  },
];

for (const c of CASES) test(`refused: ${c.name}`, () => refused(c));

test('the example manifests still pass every check (the cases above are refused for their edit alone)', () => {
  restore();
  const r = spawnSync(process.execPath, [SCRIPTS.create[0], 'create', '101', '--dry-run'], { env, encoding: 'utf8', timeout: 60_000 });
  assert.not.match(r.stderr, /at \/lxc_configs|\.\." segment|outside the directories/, r.stderr);
});

test.after(() => host.dispose());
test.run();
