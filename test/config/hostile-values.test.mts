// Hostile values in manifest fields that reach a generated file or a
// Proxmox command line. Each one must be refused before anything changes:
// exit 1, one error naming the file and the JSON pointer, no stack trace,
// and the simulated host byte for byte as it was (a running CT 103 stays
// running: nothing is stopped for a change that cannot be made).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { isMutating } from '../helpers/calls.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { checkManifestValues, planConfig } from '../../lib/lxc/plan.mts';
import { UnsafeValueError } from '../../lib/config/field-values.mts';
import { parseConfigLines } from '../../lib/pve/args.mts';

const SCRIPTS = {
  lxc: path.join(PROJECT_ROOT, 'scripts', 'managers', 'lxc-manager.mjs'),
  vm: path.join(PROJECT_ROOT, 'scripts', 'managers', 'vm-manager.mjs'),
  cli: path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs'),
};
const FILES = {
  hypervisor: ['HYPERVISOR_CONFIG_FILE', 'phoenix_hypervisor_config.json'],
  lxc: ['LXC_CONFIG_FILE', 'phoenix_lxc_configs.json'],
  vm: ['VM_CONFIG_FILE', 'phoenix_vm_configs.json'],
  stacks: ['STACKS_CONFIG_FILE', 'phoenix_stacks_config.json'],
  certificates: ['CERTIFICATE_MANIFEST_FILE', 'certificate-manifest.json'],
} as const;
type Kind = keyof typeof FILES;
const example = (kind: Kind) => JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', FILES[kind][1]), 'utf8'));

const host = createSimHost();
const work = tmpDir('phoenix-hostile-');
const env: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
  PHOENIX_HOST_ROOT: path.join(host.stateDir, 'hostfs'),
};
for (const key of ['PHOENIX_DRY_RUN', 'PHOENIX_RECORD', 'PHOENIX_LOCK_TOKEN', 'PHOENIX_DEBUG', 'PHOENIX_USE_LEGACY']) delete env[key];

// A running CT 103, as a converge would find it.
const seed = (args: string[]) => assert.is(host.run('pct', args).code, 0, args.join(' '));
seed(['create', '103', 'fastData-shared-iso:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst', '--hostname', 'Step-CA', '--memory', '512', '--cores', '1', '--storage', 'quickOS-lxc-disks', '--rootfs', 'quickOS-lxc-disks:8', '--unprivileged', '1', '--net0', 'name=eth0,bridge=vmbr100,ip=172.16.100.11/24,gw=172.16.100.1']);
seed(['start', '103']);
host.clearCalls();

/** Every file of the simulated host except the call log, whose mutating entries are checked apart. */
function stateHash(): string {
  const hash = crypto.createHash('sha256');
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (full === path.join(host.stateDir, 'calls.jsonl')) continue;
      hash.update(`${path.relative(host.stateDir, full)}\0`);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) hash.update(fs.readFileSync(full));
    }
  };
  walk(host.stateDir);
  return hash.digest('hex');
}
const baseline = stateHash();

let n = 0;
/** The five manifests, one of them changed; returns the environment that selects them and the changed file. */
function manifests(kind: Kind, mutate: (doc: any) => void): { vars: Record<string, string>; file: string } {
  const dir = path.join(work, `case-${++n}`);
  fs.mkdirSync(dir);
  const vars: Record<string, string> = {};
  let file = '';
  for (const k of Object.keys(FILES) as Kind[]) {
    const doc = example(k);
    if (k === kind) mutate(doc);
    const target = path.join(dir, FILES[k][1]);
    fs.writeFileSync(target, JSON.stringify(doc, null, 2));
    vars[FILES[k][0]] = target;
    if (k === kind) file = target;
  }
  return { vars, file };
}

interface Case {
  what: string;
  kind: Kind;
  mutate: (doc: any) => void;
  pointer: string;
  script?: keyof typeof SCRIPTS;
  args?: string[];
}

const ct = (doc: any) => doc.lxc_configs['103'];
const vm = (doc: any) => doc.vms[0];
const cases: Case[] = [
  { what: 'newline in apparmor_profile adds a raw mount line', kind: 'lxc', mutate: (d) => (ct(d).apparmor_profile = 'unconfined\nlxc.mount.entry: / host none bind 0 0'), pointer: '/lxc_configs/103/apparmor_profile' },
  { what: 'blank in apparmor_profile', kind: 'lxc', mutate: (d) => (ct(d).apparmor_profile = 'unconfined extra'), pointer: '/lxc_configs/103/apparmor_profile' },
  { what: 'comma in a mount host path adds mount options', kind: 'lxc', mutate: (d) => (ct(d).mount_points = [{ host_path: '/srv/data,shared=1,backup=1', container_path: '/data' }]), pointer: '/lxc_configs/103/mount_points/0/host_path' },
  { what: '= in a mount container path', kind: 'lxc', mutate: (d) => (ct(d).mount_points = [{ host_path: '/srv/data', container_path: '/data,ro=1' }]), pointer: '/lxc_configs/103/mount_points/0/container_path' },
  { what: 'blank in a volume mount point', kind: 'lxc', mutate: (d) => (ct(d).zfs_volumes = [{ name: 'v', pool: 'quickOS-lxc-disks', size_gb: 1, mount_point: '/a b' }]), pointer: '/lxc_configs/103/zfs_volumes/0/mount_point' },
  { what: '= inside a feature flag value', kind: 'lxc', mutate: (d) => (ct(d).pct_options = ['nesting=1=keyctl']), pointer: '/lxc_configs/103/pct_options/0' },
  { what: 'comma inside a feature flag', kind: 'lxc', mutate: (d) => (ct(d).pct_options = ['nesting=1,keyctl=1']), pointer: '/lxc_configs/103/pct_options/0' },
  { what: 'vertical tab in a raw lxc option', kind: 'lxc', mutate: (d) => (ct(d).lxc_options = ['lxc.mount.auto: sys:rw\u000blxc.cap.drop:']), pointer: '/lxc_configs/103/lxc_options/0' },
  { what: 'NUL in the container name', kind: 'lxc', mutate: (d) => (ct(d).name = 'step\u0000ca'), pointer: '/lxc_configs/103/name' },
  { what: 'carriage return in a firewall comment', kind: 'lxc', mutate: (d) => (ct(d).firewall = { enabled: true, rules: [{ type: 'in', action: 'ACCEPT', comment: 'ok\rIN ACCEPT -source 0.0.0.0/0' }] }), pointer: '/lxc_configs/103/firewall/rules/0/comment' },
  { what: 'tab in a health check command', kind: 'lxc', mutate: (d) => (ct(d).health_check = { command: 'true\tfalse' }), pointer: '/lxc_configs/103/health_check/command' },
  { what: 'comma in a bridge name', kind: 'lxc', mutate: (d) => (ct(d).network_config.bridge = 'vmbr0,tag=5'), pointer: '/lxc_configs/103/network_config/bridge' },
  { what: 'memory of 1e300 would stop CT 103 before pct refuses it', kind: 'lxc', mutate: (d) => (ct(d).memory_mb = 1e300), pointer: '/lxc_configs/103/memory_mb' },
  { what: 'negative cores', kind: 'lxc', mutate: (d) => (ct(d).cores = -2), pointer: '/lxc_configs/103/cores' },
  { what: 'fractional cores', kind: 'lxc', mutate: (d) => (ct(d).cores = 1.5), pointer: '/lxc_configs/103/cores' },
  { what: 'cores above Proxmox\'s 8192', kind: 'lxc', mutate: (d) => (ct(d).cores = 9000), pointer: '/lxc_configs/103/cores' },
  { what: 'huge swap', kind: 'lxc', mutate: (d) => (ct(d).swap_mb = 2 ** 60), pointer: '/lxc_configs/103/swap_mb' },
  { what: 'huge root disk', kind: 'lxc', mutate: (d) => (ct(d).storage_size_gb = 1e20), pointer: '/lxc_configs/103/storage_size_gb' },
  { what: 'boot order of 1e300', kind: 'lxc', mutate: (d) => (ct(d).boot_order = 1e300), pointer: '/lxc_configs/103/boot_order' },
  { what: 'port 70000 for Traefik', kind: 'lxc', mutate: (d) => (ct(d).traefik_service = { name: 'ca', port: 70000 }), pointer: '/lxc_configs/103/traefik_service/port' },
  { what: 'VLAN tag 5000', kind: 'lxc', mutate: (d) => (ct(d).network_config.tag = 5000), pointer: '/lxc_configs/103/network_config/tag' },
  { what: 'id map host id beyond 32 bits', kind: 'lxc', mutate: (d) => (ct(d).id_maps = [{ type: 'uid', host_id: 2 ** 40, container_id: 0, size: 1 }]), pointer: '/lxc_configs/103/id_maps/0/host_id' },
  { what: 'newline in a DNS record name', kind: 'lxc', mutate: (d) => (ct(d).dns_records = [{ hostname: 'ca.example.org\naddress=/#/10.6.6.6', ip: '10.0.0.1' }]), pointer: '/lxc_configs/103/dns_records/0/hostname' },
  { what: 'newline in a VM name', kind: 'vm', mutate: (d) => (vm(d).name = 'vm\nname'), pointer: '/vms/0/name', script: 'cli', args: ['create', '103'] },
  { what: 'memory 1e300 for a VM', kind: 'vm', mutate: (d) => (vm(d).memory_mb = 1e300), pointer: '/vms/0/memory_mb', script: 'cli', args: ['create', '103'] },
  { what: 'blank in NFS mount options', kind: 'vm', mutate: (d) => (vm(d).volumes = [{ type: 'nfs', server: '10.0.0.13', path: '/x', mount_point: '/mnt/x', options: 'ro 0 0\n/dev/sda /' }]), pointer: '/vms/0/volumes/0/options', script: 'cli', args: ['create', '103'] },
  { what: 'newline in the cloud-init user name', kind: 'vm', mutate: (d) => (vm(d).user_config = { username: 'ops\nroot' }), pointer: '/vms/0/user_config/username', script: 'cli', args: ['create', '103'] },
  { what: 'newline in the nginx gateway hostname', kind: 'hypervisor', mutate: (d) => (d.portainer_api.portainer_hostname = 'portainer.example.org\n}'), pointer: '/portainer_api/portainer_hostname', script: 'cli', args: ['create', '103'] },
  { what: 'newline in a dnsmasq record', kind: 'hypervisor', mutate: (d) => (d.dns_server = { ...d.dns_server, records: [{ hostname: 'a.example.org\nserver=6.6.6.6', ip: '10.0.0.1' }] }), pointer: '/dns_server/records/0/hostname', script: 'cli', args: ['create', '103'] },
  { what: 'control character in a global firewall comment', kind: 'hypervisor', mutate: (d) => (d.firewall.global_firewall_rules[0].comment = 'x\u001b[2Jy'), pointer: '/firewall/global_firewall_rules/0/comment', script: 'cli', args: ['create', '103'] },
  { what: "':' in a shadow password hash", kind: 'hypervisor', mutate: (d) => (d.users = { ...d.users, password_hash: 'x:0:0' }), pointer: '/users/password_hash', script: 'cli', args: ['create', '103'] },
  { what: 'newline in an SSH key', kind: 'hypervisor', mutate: (d) => (d.users = { ...d.users, ssh_public_key: 'ssh-ed25519 AAAA x\nssh-rsa BBBB evil' }), pointer: '/users/ssh_public_key', script: 'cli', args: ['create', '103'] },
  { what: 'newline in a post-renewal command', kind: 'certificates', mutate: (d) => (d[0].post_renewal_command = 'true\nrm -rf /'), pointer: '/0/post_renewal_command', script: 'cli', args: ['create', '103'] },
  { what: 'newline in a stack variable', kind: 'stacks', mutate: (d) => (Object.values<any>(Object.values<any>(d.docker_stacks)[0].environments)[0].variables = [{ name: 'A', value: 'x\nB=y' }]), pointer: '', script: 'cli', args: ['create', '103'] },
];

for (const c of cases) {
  test(`refused before any change: ${c.what}`, () => {
    const { vars, file } = manifests(c.kind, c.mutate);
    host.clearCalls();
    const r = spawnSync(process.execPath, [SCRIPTS[c.script ?? 'lxc'], ...(c.args ?? ['create', '103'])], { env: { ...env, ...vars }, encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    assert.is(r.status, 1, out);
    assert.ok(out.includes(file), `names the file:\n${out}`);
    if (c.pointer) assert.ok(out.includes(`at ${c.pointer}`), `names ${c.pointer}:\n${out}`);
    assert.not.match(out, /\n\s+at .*\.m?[jt]s:\d+/, 'no stack trace');
    assert.equal(host.calls().filter(isMutating), [], 'no mutating command');
    assert.is(stateHash(), baseline, 'the simulated host is unchanged');
    assert.match(host.run('pct', ['status', '103']).stdout, /running/);
  });
}

test('the plan refuses what the schema would, when a manifest entry bypasses it', () => {
  const base = example('lxc').lxc_configs['103'];
  const current = parseConfigLines(host.readConfigText('lxc', '103') ?? '');
  const hostile: Array<[string, Record<string, unknown>]> = [
    ['apparmor_profile', { apparmor_profile: 'x\nlxc.mount.entry: / host none bind 0 0' }],
    ['mount_points/0/host_path', { mount_points: [{ host_path: '/srv,shared=1', container_path: '/d' }] }],
    ['memory_mb', { memory_mb: 1e300 }],
    ['cores', { cores: 0.5 }],
    ['pct_options/0', { pct_options: ['nesting=1,keyctl=1'] }],
    ['lxc_options/0', { lxc_options: ['lxc.mount.auto: sys\nlxc.cap.drop:'] }],
    ['network_config/bridge', { network_config: { ...base.network_config, bridge: 'vmbr0,firewall=0' } }],
  ];
  for (const [field, patch] of hostile) {
    for (const fn of [() => planConfig({ ct: { ...base, ...patch }, current }), () => checkManifestValues({ ...base, ...patch })]) {
      try {
        fn();
        assert.unreachable(`${field} was accepted`);
      } catch (err) {
        assert.instance(err, UnsafeValueError, String(err));
        assert.is((err as UnsafeValueError).field, field);
      }
    }
  }
  checkManifestValues(base);
});

test.run();
