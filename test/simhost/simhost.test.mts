// Tests of the simulated Proxmox host (test/simhost): the real tools'
// answers and refusals, the state they share, recording, injection and
// parallel callers. Every call goes through the bin/ shims, as scripts
// under test will.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { test } from 'uvu';
import * as assert from 'uvu/assert';

import { BIN_DIR, createSimHost, DEFAULT_TEMPLATE, seedState, type SimHost } from './index.mts';

const TEMPLATE = `fastData-shared-iso:vztmpl/${DEFAULT_TEMPLATE}`;
const PROXMOX_LOCK_TIMEOUT = /can't lock file '[^']*' - got timeout/;

function ok(host: SimHost, tool: string, args: string[], input?: string): string {
  const r = host.run(tool, args, input === undefined ? {} : { input });
  assert.is(r.code, 0, `${tool} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Poll until `check` holds (bounded: a test never hangs on it). */
async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A CT 900 template. */
function withTemplate(host: SimHost): void {
  ok(host, 'pct', ['create', '900', TEMPLATE, '--hostname', 'base', '--memory', '2048', '--rootfs', 'quickOS-lxc-disks:8', '--net0', 'name=eth0,bridge=vmbr0,ip=dhcp']);
  ok(host, 'pct', ['template', '900']);
}

function withRunningCt(host: SimHost, id = '101'): void {
  ok(host, 'pct', ['create', id, TEMPLATE, '--hostname', `ct${id}`, '--rootfs', 'quickOS-lxc-disks:8']);
  ok(host, 'pct', ['start', id]);
}

// ---------------------------------------------------------------------------
// seeding and the environment

test('the seeded host has node pve, the manifests\' storages, the template and the pools', () => {
  const host = createSimHost();
  try {
    const status = ok(host, 'pvesm', ['status']);
    for (const id of ['local', 'local-lvm', 'quickOS-lxc-disks', 'quickOS-vm-disks', 'fastData-shared-iso', 'fastData-shared-bulk-data']) {
      assert.match(status, new RegExp(`^${id}\\s+\\w+\\s+active`, 'm'), id);
    }
    assert.match(ok(host, 'pveam', ['list', 'fastData-shared-iso']), `fastData-shared-iso:vztmpl/${DEFAULT_TEMPLATE}`);
    assert.match(ok(host, 'pvesm', ['list', 'fastData-shared-iso', '--content', 'iso']), 'noble-server-cloudimg-amd64.img');
    assert.is(ok(host, 'zpool', ['list', '-H', '-o', 'name']), 'fastData\nquickOS\n');
    assert.equal(JSON.parse(ok(host, 'pvesh', ['get', '/nodes', '--output-format', 'json'])).map((n: { node: string }) => n.node), ['pve']);
    assert.match(fs.readFileSync(path.join(host.stateDir, 'pve', 'storage.cfg'), 'utf8'), /zfspool: quickOS-lxc-disks\n\tpool quickOS\/lxc-disks/);
    assert.is(ok(host, 'pct', ['list']), '', 'no containers yet: pct list prints nothing');
  } finally {
    host.dispose();
  }
});

test('storages and the node name are configurable', () => {
  const host = createSimHost(undefined, {
    node: 'hv1',
    storages: { 'nfs-stacks': { type: 'nfs', path: '/mnt/pve/nfs-stacks', content: ['images', 'snippets'], shared: true } },
  });
  try {
    assert.match(ok(host, 'pvesm', ['status']), /^nfs-stacks\s+nfs\s+active/m);
    const r = host.run('pct', ['status', '123']);
    assert.match(r.stderr, "Configuration file 'nodes/hv1/lxc/123.conf' does not exist");
  } finally {
    host.dispose();
  }
});

test('seeding is idempotent and --reset starts over; unseeded and unset states exit 2', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simhost-seed-'));
  try {
    assert.ok(seedState(dir));
    fs.writeFileSync(path.join(dir, 'pve', 'lxc', '555.conf'), 'arch: amd64\n');
    assert.not.ok(seedState(dir), 'a second seed keeps the state');
    assert.ok(fs.existsSync(path.join(dir, 'pve', 'lxc', '555.conf')));
    const cli = spawnSync(process.execPath, [path.join(BIN_DIR, '..', 'seed.mjs'), dir, '--reset'], { encoding: 'utf8' });
    assert.is(cli.status, 0, cli.stderr);
    assert.not.ok(fs.existsSync(path.join(dir, 'pve', 'lxc', '555.conf')), '--reset wipes');

    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${BIN_DIR}:${process.env.PATH}` };
    delete env.PHOENIX_SIM_STATE;
    const unset = spawnSync(path.join(BIN_DIR, 'pct'), ['list'], { env, encoding: 'utf8' });
    assert.is(unset.status, 2);
    assert.match(unset.stderr, 'PHOENIX_SIM_STATE is not set');
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'simhost-empty-'));
    const unseeded = spawnSync(path.join(BIN_DIR, 'qm'), ['list'], { env: { ...env, PHOENIX_SIM_STATE: empty }, encoding: 'utf8' });
    assert.is(unseeded.status, 2);
    fs.rmSync(empty, { recursive: true, force: true });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------
// pct: real refusals

test('pct status of an unknown CT: PVE message, exit 2', () => {
  const host = createSimHost();
  try {
    const r = host.run('pct', ['status', '999']);
    assert.is(r.code, 2);
    assert.is(r.stderr, "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n");
  } finally {
    host.dispose();
  }
});

test('pct start refuses a template; stop refuses a stopped CT; start refuses a running one', () => {
  const host = createSimHost();
  try {
    withTemplate(host);
    let r = host.run('pct', ['start', '900']);
    assert.is(r.code, 255);
    assert.is(r.stderr, "you can't start a CT if it's a template\n");
    r = host.run('pct', ['stop', '900']);
    assert.is(r.code, 255);
    assert.is(r.stderr, 'CT 900 not running\n');

    withRunningCt(host, '101');
    r = host.run('pct', ['start', '101']);
    assert.is(r.code, 255);
    assert.is(r.stderr, 'CT 101 already running\n');
    assert.is(ok(host, 'pct', ['status', '101']), 'status: running\n');
    ok(host, 'pct', ['stop', '101']);
    r = host.run('pct', ['stop', '101']);
    assert.is(r.stderr, 'CT 101 not running\n');
  } finally {
    host.dispose();
  }
});

test('pct set: unprivileged is read-only, unknown options and bad values are refused like PVE', () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    let r = host.run('pct', ['set', '101', '--unprivileged', '1']);
    assert.is(r.code, 255);
    assert.is(r.stderr, "unable to modify read-only option: 'unprivileged'\n");

    r = host.run('pct', ['set', '101', '--foo', '1']);
    assert.is(r.code, 255);
    assert.is(r.stderr, 'Unknown option: foo\n400 unable to parse option\npct set <vmid> [OPTIONS]\n');

    r = host.run('pct', ['set', '101', '--memory', 'lots']);
    assert.is(r.code, 255);
    assert.match(r.stderr, "400 Parameter verification failed.\nmemory: type check ('integer') failed - got 'lots'\n");

    // lxc-manager's startup line with an empty boot_delay
    r = host.run('pct', ['set', '101', '--startup', 'order=3,up=,down=']);
    assert.match(r.stderr, 'startup: invalid format - unable to parse startup options');

    r = host.run('pct', ['set', '101', '--net0', 'bridge=vmbr0,ip=dhcp']);
    assert.is(r.code, 255, 'net0 without name is refused');

    ok(host, 'pct', ['set', '101', '--memory', '1024', '--cores', '2', '--onboot', '1', '--startup', 'order=3,up=5,down=5']);
    const props = host.readConfig('lxc', 101)!.main.props;
    assert.is(props.memory, '1024');
    assert.is(props.onboot, '1');
    assert.is(props.startup, 'order=3,up=5,down=5');
    assert.is(props.unprivileged, '1', 'new containers are unprivileged by default');

    ok(host, 'pct', ['set', '101', '--net0', 'name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1,firewall=1']);
    assert.match(host.readConfig('lxc', 101)!.main.props.net0!, /^bridge=vmbr0,firewall=1,gw=10\.0\.0\.1,hwaddr=BC:24:11:[0-9A-F:]{8},ip=10\.0\.0\.5\/24,name=eth0,type=veth$/);
    ok(host, 'pct', ['set', '101', '--delete', 'onboot']);
    assert.is(host.readConfig('lxc', 101)!.main.props.onboot, undefined);
  } finally {
    host.dispose();
  }
});

test('pct clone: onto an existing id is refused; linked clone of a template; full clone needs no template', () => {
  const host = createSimHost();
  try {
    withTemplate(host);
    ok(host, 'pct', ['clone', '900', '101', '--hostname', 'Nginx-Phoenix']);
    const r = host.run('pct', ['clone', '900', '101']);
    assert.is(r.code, 255);
    assert.is(r.stderr, "CT 101 already exists on node 'pve'\n");

    const cfg = host.readConfig('lxc', 101)!.main.props;
    assert.is(cfg.hostname, 'Nginx-Phoenix');
    assert.is(cfg.rootfs, 'quickOS-lxc-disks:basevol-900-disk-0/subvol-101-disk-0,size=8G');
    assert.is(cfg.template, undefined);
    assert.is.not(cfg.net0, host.readConfig('lxc', 900)!.main.props.net0, 'a clone gets a new MAC');
    assert.match(ok(host, 'zfs', ['get', '-H', '-o', 'value', 'origin', 'quickOS/lxc-disks/subvol-101-disk-0']), 'quickOS/lxc-disks/basevol-900-disk-0@__base__');

    const storage = host.run('pct', ['clone', '900', '102', '--storage', 'local-lvm']);
    assert.is(storage.stderr, "parameter 'storage' not allowed for linked clones\n");
    ok(host, 'pct', ['clone', '900', '102', '--full', '--storage', 'local-lvm']);
    assert.is(host.readConfig('lxc', 102)!.main.props.rootfs, 'local-lvm:vm-102-disk-0,size=8G');

    const linked = host.run('pct', ['clone', '102', '103', '--full', '0']);
    assert.is(linked.stderr, "Linked clone feature for 'local-lvm:vm-102-disk-0' is not available\n");

    const busy = host.run('pct', ['destroy', '900']);
    assert.is(busy.stderr, "base volume 'basevol-900-disk-0' is still in use by linked clones\n");
  } finally {
    host.dispose();
  }
});

test('pct has no restart verb; verbs abbreviate like the PVE CLI', () => {
  const host = createSimHost();
  try {
    const r = host.run('pct', ['restart', '101']);
    assert.is(r.code, 255);
    assert.match(r.stderr, /^ERROR: unknown command 'pct restart'\nUSAGE: pct <COMMAND> \[ARGS\] \[OPTIONS\]\n/);
    assert.is(host.run('pct', ['lists', '999']).code, 2, 'a unique prefix (listsnapshot) runs the command');
    assert.is(host.run('pct', ['lis']).code, 255, 'list and listsnapshot: ambiguous');
    assert.is(host.run('pct', ['st', '101']).code, 255, 'ambiguous prefix (start, status, stop)');
  } finally {
    host.dispose();
  }
});

test('pct create needs a free id, an existing template and a rootdir storage', () => {
  const host = createSimHost();
  try {
    let r = host.run('pct', ['create', '900', 'fastData-shared-iso:vztmpl/nope.tar.zst', '--rootfs', 'quickOS-lxc-disks:8']);
    assert.is(r.code, 255);
    assert.match(r.stderr, "unable to create CT 900 - volume 'fastData-shared-iso:vztmpl/nope.tar.zst' does not exist");
    assert.is(host.readConfig('lxc', 900), undefined);
    assert.is(ok(host, 'zfs', ['list', '-H', '-o', 'name', '-r', 'quickOS/lxc-disks']), 'quickOS/lxc-disks\n', 'no disk left behind');

    r = host.run('pct', ['create', '900', TEMPLATE]);
    assert.match(r.stderr, "storage: storage 'local' does not support container directories");

    // the absolute path the manifests use resolves through the dir storage at /fastData/shared-iso
    ok(host, 'pct', ['create', '900', `/fastData/shared-iso/template/cache/${DEFAULT_TEMPLATE}`, '--storage', 'quickOS-lxc-disks', '--rootfs', 'quickOS-lxc-disks:8']);
    r = host.run('pct', ['create', '900', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    assert.is(r.stderr, "CT 900 already exists on node 'pve'\n");
    r = host.run('pct', ['create', '901', `/mnt/pve/fastData/shared-iso/template/cache/${DEFAULT_TEMPLATE}`, '--rootfs', 'quickOS-lxc-disks:8']);
    assert.is(r.code, 255, 'a path no storage serves is not a template');
  } finally {
    host.dispose();
  }
});

test('pct template refuses a running CT, a template and a CT with snapshots', () => {
  const host = createSimHost();
  try {
    withRunningCt(host, '101');
    assert.is(host.run('pct', ['template', '101']).stderr, "you can't convert a CT to template if the CT is running\n");
    ok(host, 'pct', ['stop', '101']);
    ok(host, 'pct', ['snapshot', '101', 'clean']);
    assert.is(host.run('pct', ['template', '101']).stderr, 'unable to create template, because CT contains snapshots\n');
    ok(host, 'pct', ['delsnapshot', '101', 'clean']);
    ok(host, 'pct', ['template', '101']);
    assert.is(host.run('pct', ['template', '101']).stderr, "you can't convert a template to a template\n");
    assert.is(host.readConfig('lxc', 101)!.main.props.template, '1');
    assert.is(host.readConfig('lxc', 101)!.main.props.rootfs, 'quickOS-lxc-disks:basevol-101-disk-0,size=8G');
  } finally {
    host.dispose();
  }
});

test('pct destroy refuses a running CT and removes disks, guest tree and firewall file', () => {
  const host = createSimHost();
  try {
    withRunningCt(host, '101');
    fs.writeFileSync(path.join(host.stateDir, 'pve', 'firewall', '101.fw'), '[OPTIONS]\nenable: 1\n');
    const r = host.run('pct', ['destroy', '101']);
    assert.is(r.stderr, 'unable to destroy CT 101 - container is running\n');
    ok(host, 'pct', ['stop', '101']);
    ok(host, 'pct', ['destroy', '101', '--purge']);
    assert.is(host.readConfig('lxc', 101), undefined);
    assert.not.ok(fs.existsSync(path.join(host.stateDir, 'pve', 'firewall', '101.fw')));
    assert.not.ok(fs.existsSync(host.guestPath(101, '/etc/os-release')));
    assert.is(host.run('zfs', ['list', 'quickOS/lxc-disks/subvol-101-disk-0']).code, 1);
    assert.is(host.run('pct', ['destroy', '101']).code, 2);
  } finally {
    host.dispose();
  }
});

test('pct resize grows, refuses to shrink and to "resize" to the same size', () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    ok(host, 'pct', ['resize', '101', 'rootfs', '16G']);
    assert.is(host.readConfig('lxc', 101)!.main.props.rootfs, 'quickOS-lxc-disks:subvol-101-disk-0,size=16G');
    assert.is(host.run('pct', ['resize', '101', 'rootfs', '16G']).stderr, 'disk is already at specified size\n');
    assert.is(host.run('pct', ['resize', '101', 'rootfs', '8G']).stderr, 'unable to shrink disk size\n');
    ok(host, 'pct', ['resize', '101', 'rootfs', '+4G']);
    assert.match(host.readConfig('lxc', 101)!.main.props.rootfs!, 'size=20G');
    assert.is(ok(host, 'zfs', ['get', '-H', '-o', 'value', 'refquota', 'quickOS/lxc-disks/subvol-101-disk-0']), '20G\n');
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// files: push / pull / exec

test('push, exec and pull round-trip through the guest tree', () => {
  const host = createSimHost();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'simhost-files-'));
  try {
    withRunningCt(host, '101');
    const src = path.join(tmp, 'ca.crt');
    fs.writeFileSync(src, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    ok(host, 'pct', ['push', '101', src, '/usr/local/share/ca-certificates/phoenix_root_ca.crt', '--perms', '644']);
    assert.is(host.run('pct', ['exec', '101', '--', 'test', '-f', '/usr/local/share/ca-certificates/phoenix_root_ca.crt']).code, 0);
    assert.is(host.run('pct', ['exec', '101', '--', 'test', '-f', '/etc/missing']).code, 1);
    assert.is(host.run('pct', ['exec', '101', '--', 'test', '-d', '/usr/local/share/ca-certificates']).code, 0);
    assert.is(ok(host, 'pct', ['exec', '101', '--', 'cat', '/usr/local/share/ca-certificates/phoenix_root_ca.crt']), fs.readFileSync(src, 'utf8'));

    ok(host, 'pct', ['exec', '101', '--', 'mkdir', '-p', '/tmp/phoenix_run/sites-available']);
    ok(host, 'pct', ['push', '101', src, '/tmp/phoenix_run/run.sh']);
    let r = host.run('pct', ['exec', '101', '--', '/tmp/phoenix_run/run.sh', '101']);
    assert.is(r.code, 126, 'a script must be executable');
    ok(host, 'pct', ['exec', '101', '--', 'chmod', '+x', '/tmp/phoenix_run/run.sh']);
    assert.is(host.run('pct', ['exec', '101', '--', 'test', '-x', '/tmp/phoenix_run/run.sh']).code, 0);
    ok(host, 'pct', ['exec', '101', '--', '/tmp/phoenix_run/run.sh', '101']);
    assert.is(host.run('pct', ['exec', '101', '--', '/tmp/nope.sh']).code, 127);

    const back = path.join(tmp, 'back.crt');
    ok(host, 'pct', ['pull', '101', '/usr/local/share/ca-certificates/phoenix_root_ca.crt', back]);
    assert.is(fs.readFileSync(back, 'utf8'), fs.readFileSync(src, 'utf8'));
    assert.is(fs.readFileSync(host.guestPath(101, '/usr/local/share/ca-certificates/phoenix_root_ca.crt'), 'utf8'), fs.readFileSync(src, 'utf8'));

    r = host.run('pct', ['push', '101', src, '/no/such/dir/x.crt']);
    assert.is(r.stderr, 'failed to create file: /no/such/dir/x.crt: No such file or directory\n', 'push does not create directories');
    r = host.run('pct', ['pull', '101', '/etc/absent', path.join(tmp, 'absent')]);
    assert.is(r.stderr, 'failed to open /etc/absent: No such file or directory\n');
    r = host.run('pct', ['push', '101', path.join(tmp, 'nope'), '/tmp/x']);
    assert.is(r.stderr, `failed to open ${path.join(tmp, 'nope')} for reading\n`);
    r = host.run('pct', ['push', '101', src, '/tmp/x', '--user', 'nosuchuser']);
    assert.is(r.stderr, 'failed to get uid for: nosuchuser\n');
    ok(host, 'pct', ['push', '101', src, '/tmp/x', '--user', 'www-data', '--group', '33']);

    ok(host, 'pct', ['exec', '101', '--', 'rm', '-rf', '/tmp/phoenix_run']);
    assert.is(host.run('pct', ['exec', '101', '--', 'test', '-e', '/tmp/phoenix_run']).code, 1);

    ok(host, 'pct', ['stop', '101']);
    assert.is(host.run('pct', ['exec', '101', '--', 'true']).stderr, "container '101' not running!\n");
    assert.is(host.run('pct', ['push', '101', src, '/tmp/x']).stderr, 'can only push files to a running CT\n');
    assert.match(host.run('pct', ['pull', '101', '/etc/hostname', back]).stderr, 'can only pull files from a running VM');
  } finally {
    host.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('exec: shells, `command -v`, stdin scripts (counted, never stored) and scripted answers', () => {
  const host = createSimHost();
  try {
    withRunningCt(host, '101');
    // `command` is a shell builtin: there is no binary lxc-attach could start
    const bare = host.run('pct', ['exec', '101', '--', 'command', '-v', 'bash']);
    assert.is(bare.code, 127);
    assert.match(bare.stderr, 'Failed to exec "command"');
    assert.is(ok(host, 'pct', ['exec', '101', '--', 'sh', '-c', 'command -v bash']), '/usr/bin/bash\n');
    assert.is(host.run('pct', ['exec', '101', '--', 'sh', '-c', 'command -v docker']).code, 1);
    ok(host, 'pct', ['exec', '101', '--', 'bash', '-c', 'mkdir -p /etc/traefik && echo "entryPoints: {}" > /etc/traefik/traefik.yml']);
    assert.is(fs.readFileSync(host.guestPath(101, '/etc/traefik/traefik.yml'), 'utf8'), 'entryPoints: {}\n');
    assert.is(host.run('pct', ['exec', '101', '--', 'bash', '-c', 'test -f /nope || exit 0']).code, 0);
    assert.is(host.run('pct', ['exec', '101', '--', 'false']).code, 1);
    assert.is(host.run('pct', ['exec', '101', 'ls', '-la']).code, 255, 'options before -- are pct\'s own');

    const secret = 'echo s3cr3t-password | docker secret create x -\n';
    host.clearCalls();
    ok(host, 'pct', ['exec', '101', '--', 'bash', '-s', '--', 'arg1'], secret);
    const [call] = host.calls();
    assert.is(call!.stdin_bytes, Buffer.byteLength(secret));
    assert.not.match(fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8'), 's3cr3t');

    host.injectExec({ tool: 'pct', guest: 101, command: ['systemctl', 'is-active'], contains: 'step-ca', exit: 3, stdout: 'inactive\n' });
    const svc = host.run('pct', ['exec', '101', '--', 'systemctl', 'is-active', 'step-ca']);
    assert.is(svc.code, 3);
    assert.is(svc.stdout, 'inactive\n');
    assert.is(host.run('pct', ['exec', '101', '--', 'systemctl', 'is-active', 'nginx']).code, 0, 'other commands still succeed');
    host.injectExec({ stdin_contains: 'apt-get install', exit: 100, stderr: 'E: Unable to locate package\n', times: 1 });
    assert.is(host.run('pct', ['exec', '101', '--', 'bash', '-s'], { input: 'apt-get install foo\n' }).code, 100);
    assert.is(host.run('pct', ['exec', '101', '--', 'bash', '-s'], { input: 'apt-get install foo\n' }).code, 0, 'times: 1 is spent');
  } finally {
    host.dispose();
  }
});

test('bind mounts to existing host directories are the host\'s files inside the CT', () => {
  const host = createSimHost();
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'simhost-bind-'));
  try {
    // An unprivileged CT (pct create's default) writes there only when the directory is its root's (host 100000).
    if (process.getuid?.() === 0) fs.chownSync(shared, 100000, 100000);
    ok(host, 'pct', ['create', '103', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8', '--mp0', `${shared},mp=/etc/step-ca/ssl`]);
    ok(host, 'pct', ['start', '103']);
    ok(host, 'pct', ['exec', '103', '--', 'sh', '-c', 'echo root > /etc/step-ca/ssl/phoenix_root_ca.crt']);
    assert.is(fs.readFileSync(path.join(shared, 'phoenix_root_ca.crt'), 'utf8'), 'root\n');
    assert.is(host.run('pct', ['clone', '103', '104']).stderr, "unable to clone mountpoint 'mp0' (type bind)\n");
    const rm = host.run('pct', ['exec', '103', '--', 'rm', '-rf', '/etc/step-ca/ssl']);
    assert.is(rm.stderr, "rm: cannot remove '/etc/step-ca/ssl': Device or resource busy\n");
    assert.ok(fs.existsSync(shared), 'the host directory behind a mount point stays');
  } finally {
    host.dispose();
    fs.rmSync(shared, { recursive: true, force: true });
  }
});

test('a bind-mount source under the simulated host root (PHOENIX_HOST_ROOT, default <state>/hostfs) is the one mounted', () => {
  const host = createSimHost();
  try {
    const hostDir = path.join(host.stateDir, 'hostfs', 'quickOS', 'lxc-persistent-data', '103', 'step');
    fs.mkdirSync(path.join(hostDir, 'certs'), { recursive: true });
    fs.writeFileSync(path.join(hostDir, 'certs', 'root_ca.crt'), 'ROOT\n');
    ok(host, 'pct', ['create', '103', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8', '--mp0', '/quickOS/lxc-persistent-data/103/step,mp=/root/.step']);
    ok(host, 'pct', ['start', '103']);
    assert.is(host.run('pct', ['exec', '103', '--', 'cat', '/root/.step/certs/root_ca.crt']).stdout, 'ROOT\n');
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// snapshots and the config file

test('snapshots land as [sections] after the live config, with parent links', () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8', '--memory', '512']);
    ok(host, 'pct', ['snapshot', '101', 'pre-configured']);
    ok(host, 'pct', ['set', '101', '--memory', '2048']);
    ok(host, 'pct', ['snapshot', '101', 'final-form', '--description', 'ready']);
    const text = host.readConfigText('lxc', 101)!;
    const [live, ...sections] = text.split(/\n(?=\[)/);
    assert.match(live!, /^memory: 2048$/m);
    assert.match(live!, /^parent: final-form$/m);
    assert.is(sections.length, 2);
    assert.match(sections[0]!, /^\[final-form\]\n#ready\n/);
    assert.match(sections[0]!, /^parent: pre-configured$/m);
    assert.match(sections[0]!, /^snaptime: \d+$/m);
    assert.match(sections[1]!, /^\[pre-configured\]\n/);
    assert.match(sections[1]!, /^memory: 512$/m);

    const tree = ok(host, 'pct', ['listsnapshot', '101']);
    assert.match(tree, /^`-> pre-configured\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+no-description\n `-> final-form .* ready\n  `-> current\s+You are here!\n$/);
    assert.is(host.run('pct', ['snapshot', '101', 'final-form']).stderr, "snapshot name 'final-form' already used\n");
    assert.is(host.run('pct', ['snapshot', '101', 'current']).stderr, "unable to use snapshot name 'current' (reserved name)\n");
    assert.match(ok(host, 'zfs', ['list', '-H', '-t', 'snapshot', '-o', 'name']), 'quickOS/lxc-disks/subvol-101-disk-0@final-form');

    // ZFS only rolls back to the newest snapshot
    assert.match(host.run('pct', ['rollback', '101', 'pre-configured']).stderr, "can't rollback, 'pre-configured' is not most recent snapshot");
    ok(host, 'pct', ['delsnapshot', '101', 'final-form']);
    assert.is(host.readConfig('lxc', 101)!.main.props.parent, 'pre-configured', 'deleting relinks the parent');
    ok(host, 'pct', ['rollback', '101', 'pre-configured']);
    assert.is(host.readConfig('lxc', 101)!.main.props.memory, '512');
    assert.is(host.run('pct', ['delsnapshot', '101', 'nope']).stderr, "snapshot 'nope' does not exist\n");
  } finally {
    host.dispose();
  }
});

test('lines appended by hand after a snapshot section belong to the snapshot (as on PVE)', () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    ok(host, 'pct', ['snapshot', '101', 'first']);
    fs.appendFileSync(path.join(host.stateDir, 'pve', 'lxc', '101.conf'), 'lxc.apparmor.profile: unconfined\n');
    assert.not.match(ok(host, 'pct', ['config', '101']), 'lxc.apparmor.profile');
    assert.equal(host.readConfig('lxc', 101)!.snapshots.first!.raw, [['lxc.apparmor.profile', 'unconfined']]);
    // raw lines in the live section survive a pct set and stay at the end of it
    const cfg = path.join(host.stateDir, 'pve', 'lxc', '102.conf');
    ok(host, 'pct', ['create', '102', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    fs.appendFileSync(cfg, 'lxc.cgroup2.devices.allow: c 195:* rwm\n');
    ok(host, 'pct', ['set', '102', '--cores', '4']);
    assert.match(fs.readFileSync(cfg, 'utf8'), /cores: 4\n[\s\S]*lxc\.cgroup2\.devices\.allow: c 195:\* rwm\n$/);
    assert.match(ok(host, 'pct', ['config', '102']), /unprivileged: 1\nlxc\.cgroup2\.devices\.allow: c 195:\* rwm\n$/);
  } finally {
    host.dispose();
  }
});

test('options a running CT cannot take wait in [pve:pending] until the next start', () => {
  const host = createSimHost();
  try {
    withRunningCt(host, '101');
    ok(host, 'pct', ['set', '101', '--features', 'nesting=1,keyctl=1', '--memory', '1024']);
    assert.match(ok(host, 'pct', ['config', '101']), 'features: nesting=1,keyctl=1');
    assert.not.match(ok(host, 'pct', ['config', '101', '--current']), 'features');
    assert.match(host.readConfigText('lxc', 101)!, /\[pve:pending\]\nfeatures: nesting=1,keyctl=1/);
    assert.is(host.readConfig('lxc', 101)!.main.props.memory, '1024', 'memory is hot-plugged');
    ok(host, 'pct', ['stop', '101']);
    ok(host, 'pct', ['start', '101']);
    assert.is(host.readConfig('lxc', 101)!.main.props.features, 'nesting=1,keyctl=1');
    assert.is(host.readConfig('lxc', 101)!.pending, undefined);
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// recording and injection

test('every call is recorded with tool, argv, exit code and duration', () => {
  const host = createSimHost();
  try {
    host.run('pct', ['status', '101']);
    host.run('pvesm', ['status']);
    host.run('zfs', ['list', '-H']);
    const calls = host.calls();
    assert.equal(calls.map((c) => [c.tool, c.argv, c.exit]), [
      ['pct', ['status', '101'], 2],
      ['pvesm', ['status'], 0],
      ['zfs', ['list', '-H'], 0],
    ]);
    for (const c of calls) {
      assert.type(c.ms, 'number');
      assert.ok(c.ms >= 0);
      assert.is(c.stdin_bytes, undefined, 'no stdin consumed');
    }
    assert.is(host.calls('pvesm').length, 1);
    const line = fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8').split('\n')[0]!;
    assert.equal(Object.keys(JSON.parse(line)).slice(0, 4), ['tool', 'argv', 'exit', 'ms']);
  } finally {
    host.dispose();
  }
});

test('latency: per tool in inject.json, globally by PHOENIX_SIM_LATENCY_MS', () => {
  const host = createSimHost();
  try {
    host.setLatency({ pct: 1000 });
    let started = Date.now();
    host.run('pct', ['list']);
    assert.ok(Date.now() - started >= 1000, 'pct waited');
    assert.ok(host.calls('pct')[0]!.ms >= 1000, 'the recorded duration includes the latency');
    started = Date.now();
    host.run('qm', ['list']);
    assert.ok(Date.now() - started < 1000, 'qm did not');

    host.setLatency({});
    started = Date.now();
    host.run('zfs', ['list'], { env: { PHOENIX_SIM_LATENCY_MS: '300' } });
    assert.ok(Date.now() - started >= 300);
  } finally {
    host.dispose();
  }
});

test('failure injection: argv prefix, `times` consumed and persisted, then the real answer', () => {
  const host = createSimHost();
  try {
    withRunningCt(host, '101');
    ok(host, 'pct', ['stop', '101']);
    host.injectFailure({ tool: 'pct', argv: ['start', '101'], times: 2, exit: 1, stderr: 'startup for container \'101\' failed' });
    for (let i = 0; i < 2; i++) {
      const r = host.run('pct', ['start', '101']);
      assert.is(r.code, 1);
      assert.is(r.stderr, "startup for container '101' failed\n");
    }
    assert.is(JSON.parse(fs.readFileSync(path.join(host.stateDir, 'inject.json'), 'utf8')).failures[0].times, 0);
    assert.is(host.run('pct', ['start', '102']).code, 255, 'other argv are not matched (and fail for real: no CT 102)');
    ok(host, 'pct', ['start', '101']);
    assert.is(ok(host, 'pct', ['status', '101']), 'status: running\n', 'the failed attempts changed nothing');
  } finally {
    host.dispose();
  }
});

test('the lock time-out preset answers with Proxmox\'s text, which the runner retries on', () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    host.injectLockTimeout('pct', ['set', '101'], 1);
    const r = host.run('pct', ['set', '101', '--memory', '1024']);
    assert.is(r.code, 255);
    assert.is(r.stderr, "trying to acquire lock...\ncan't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout\n");
    assert.match(r.stderr, PROXMOX_LOCK_TIMEOUT);
    assert.is(host.readConfig('lxc', 101)!.main.props.memory, undefined);
    ok(host, 'pct', ['set', '101', '--memory', '1024']);
    host.injectLockTimeout('qm', ['start'], 1);
    assert.match(host.run('qm', ['start', '9000']).stderr, "can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout");
  } finally {
    host.dispose();
  }
});

test('a busy guest config lock makes a second caller wait, then time out like PVE', async () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    host.updateInjection((inj) => void (inj.lock_timeout_ms = 300));
    // only the first caller is slow: it holds CT 101's config lock for 2 s
    const first = host.runAsync('pct', ['set', '101', '--cores', '2'], { env: { PHOENIX_SIM_LATENCY_MS: '2000' } });
    await until(() => fs.existsSync(path.join(host.stateDir, 'run', 'lock', 'lxc', 'pve-config-101.lock')));
    const second = await host.runAsync('pct', ['set', '101', '--cores', '4']);
    assert.is(second.code, 255);
    assert.match(second.stderr, /^trying to acquire lock\.\.\.\ncan't lock file '\/run\/lock\/lxc\/pve-config-101\.lock' - got timeout\n$/);
    assert.is((await first).code, 0);
    assert.is(host.readConfig('lxc', 101)!.main.props.cores, '2');
  } finally {
    host.dispose();
  }
});

test('locks left behind by a dead process are taken over', () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    // a pid that cannot be alive (beyond pid_max) stands for a crashed simulator call
    const dead = '4194305 0 crashed';
    fs.writeFileSync(path.join(host.stateDir, '.state.lock'), dead);
    fs.mkdirSync(path.join(host.stateDir, 'run', 'lock', 'lxc'), { recursive: true });
    fs.writeFileSync(path.join(host.stateDir, 'run', 'lock', 'lxc', 'pve-config-101.lock'), dead);
    const started = Date.now();
    const r = host.run('pct', ['set', '101', '--memory', '768']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr, '', 'no contention reported for a dead holder');
    assert.ok(Date.now() - started < 2000);
    assert.is(host.readConfig('lxc', 101)!.main.props.memory, '768');
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// concurrency

test('20 parallel `pct set` calls on one CT leave a consistent config', async () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => host.runAsync('pct', ['set', '101', `--net${i}`, `name=eth${i},bridge=vmbr0,ip=dhcp`])),
    );
    for (const r of results) assert.is(r.code, 0, r.stderr);
    const props = host.readConfig('lxc', 101)!.main.props;
    for (let i = 0; i < 20; i++) assert.match(props[`net${i}`] ?? '', `name=eth${i},type=veth`, `net${i}`);
    assert.is(host.calls('pct').length, 21);
  } finally {
    host.dispose();
  }
});

test('parallel creates of different CTs overlap; parallel clones of one CT meet its `lock: disk`', async () => {
  const host = createSimHost();
  try {
    withTemplate(host);
    host.setLatency({ pct: 600 });
    const ids = ['101', '102', '103', '104', '105', '106'];
    let started = Date.now();
    const created = await Promise.all(ids.map((id) => host.runAsync('pct', ['create', id, TEMPLATE, '--hostname', `ct${id}`, '--rootfs', 'quickOS-lxc-disks:8'])));
    const elapsed = Date.now() - started;
    for (const r of created) assert.is(r.code, 0, r.stderr);
    assert.ok(elapsed < 600 * ids.length, `creates of different CTs overlap (${elapsed} ms)`);
    assert.is(new Set(ids.map((id) => host.readConfig('lxc', id)!.main.props.rootfs)).size, ids.length, 'distinct disks');

    // pve-container marks the source `lock: disk` for the whole clone: a second clone of it meanwhile is refused
    const clones = ['201', '202', '203', '204'];
    started = Date.now();
    const results = await Promise.all(clones.map((id) => host.runAsync('pct', ['clone', '900', id])));
    const won = results.filter((r) => r.code === 0);
    assert.is(won.length, 1, results.map((r) => r.stderr).join(''));
    for (const r of results.filter((x) => x.code !== 0)) assert.match(r.stderr, /CT is locked \(disk\)\n$/);
    assert.is(host.readConfig('lxc', 900)!.main.props.lock, undefined, 'the source is released afterwards');
    const list = ok(host, 'pct', ['list']);
    for (const id of ids) assert.match(list, new RegExp(`^${id}\\s+stopped\\s+ct${id}`, 'm'));

    // while a clone runs, the source shows the lock in `pct list`
    host.setLatency({});
    const pending = host.runAsync('pct', ['clone', '900', '210'], { env: { PHOENIX_SIM_LATENCY_MS: '2000' } });
    await until(() => host.readConfig('lxc', 210) !== undefined);
    const during = ok(host, 'pct', ['list']);
    assert.match(during, /^900\s+stopped\s+disk\s+base/m);
    assert.match(during, /^210\s+stopped\s+create\s+CT210/m);
    assert.is((await pending).code, 0);
    assert.match(ok(host, 'pct', ['list']), /^210\s+stopped\s+base\s*$/m);
  } finally {
    host.dispose();
  }
});

test('parallel qm clones of one template all succeed (qemu-server locks the source shared)', async () => {
  const host = createSimHost();
  try {
    ok(host, 'qm', ['create', '9000', '--name', 'tmpl', '--scsi0', 'quickOS-vm-disks:4', '--agent', '1']);
    ok(host, 'qm', ['template', '9000']);
    host.setLatency({ qm: 300 });
    const results = await Promise.all(['1001', '1002', '1003'].map((id) => host.runAsync('qm', ['clone', '9000', id, '--name', `vm${id}`, '--full'])));
    for (const r of results) assert.is(r.code, 0, r.stderr);
    assert.is(host.readConfig('qemu', 1002)!.main.props.scsi0, 'quickOS-vm-disks:vm-1002-disk-0,size=4G');
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// qm

test('qm: template refusal, guest agent, guest exec JSON and the exec time-out', () => {
  const host = createSimHost();
  try {
    ok(host, 'qm', ['create', '9000', '--name', 'ubuntu-2404-cloud-template', '--memory', '2048', '--net0', 'virtio,bridge=vmbr0', '--agent', '1', '--scsihw', 'virtio-scsi-pci']);
    const imported = ok(host, 'qm', ['importdisk', '9000', '/fastData/shared-iso/template/iso/noble-server-cloudimg-amd64.img', 'quickOS-vm-disks']);
    assert.match(imported, "unused0: successfully imported disk 'quickOS-vm-disks:vm-9000-disk-0'");
    ok(host, 'qm', ['set', '9000', '--scsi0', 'quickOS-vm-disks:vm-9000-disk-0']);
    ok(host, 'qm', ['set', '9000', '--ide2', 'quickOS-vm-disks:cloudinit']);
    ok(host, 'qm', ['resize', '9000', 'scsi0', '32G']);
    const cfg = host.readConfig('qemu', 9000)!.main.props;
    assert.is(cfg.scsi0, 'quickOS-vm-disks:vm-9000-disk-0,size=32G');
    assert.is(cfg.unused0, undefined);
    assert.is(cfg.ide2, 'quickOS-vm-disks:vm-9000-cloudinit,media=cdrom');
    assert.match(cfg.net0!, /^virtio=BC:24:11:[0-9A-F:]{8},bridge=vmbr0$/);
    assert.is(host.run('qm', ['resize', '9000', 'scsi0', '16G']).stderr, 'shrinking disks is not supported\n');

    ok(host, 'qm', ['template', '9000']);
    let r = host.run('qm', ['start', '9000']);
    assert.is(r.code, 255);
    assert.is(r.stderr, "you can't start a vm if it's a template\n");

    assert.match(ok(host, 'qm', ['clone', '9000', '1001', '--name', 'Portainer', '--full']), 'create full clone of drive scsi0 (quickOS-vm-disks:base-9000-disk-0)');
    assert.is(host.run('qm', ['clone', '9000', '1001']).stderr, 'unable to create VM 1001: config file already exists\n');
    host.updateInjection((inj) => void (inj.agent_delay_ms = { 1001: 60_000 }));
    ok(host, 'qm', ['start', '1001']);
    assert.is(host.run('qm', ['start', '1001']).stderr, 'VM 1001 already running\n');
    r = host.run('qm', ['agent', '1001', 'ping']);
    assert.is(r.code, 255);
    assert.is(r.stderr, 'QEMU guest agent is not running\n');
    host.updateInjection((inj) => void (inj.agent_delay_ms = 0));
    ok(host, 'qm', ['reboot', '1001']);
    assert.is(ok(host, 'qm', ['agent', '1001', 'ping']), '');

    const out = ok(host, 'qm', ['guest', 'exec', '1001', '--', 'cat', '/etc/os-release']);
    assert.match(out, /^\{\n   "exitcode" : 0,\n   "exited" : 1,\n   "out-data" : "PRETTY_NAME=\\"Ubuntu 24\.04/);
    assert.equal(JSON.parse(ok(host, 'qm', ['guest', 'exec', '1001', '--', 'test', '-f', '/nope'])), { exitcode: 1, exited: 1 });
    r = host.run('qm', ['guest', 'exec', '1001', '--', '/opt/missing']);
    assert.is(r.code, 255);
    assert.match(r.stderr, 'Agent error: Failed to execute child process');

    // a command that takes 5 min (simulated) against the default 30 s: the pid comes back.
    // The gap between the two (2.7 s real) leaves room for a loaded machine.
    host.updateInjection((inj) => {
      inj.time_scale = 0.01;
      inj.exec = [{ tool: 'qm', command: ['/bin/bash', '-c'], contains: 'cloud-init status --wait', duration_ms: 300_000, exit: 0, stdout: 'status: done\n' }];
    });
    r = host.run('qm', ['guest', 'exec', '1001', '--', '/bin/bash', '-c', 'cloud-init status --wait']);
    assert.is(r.code, 0);
    assert.is(r.stderr, 'timeout reached, returning pid\n');
    const { pid } = JSON.parse(r.stdout) as { pid: number };
    assert.type(pid, 'number');
    assert.equal(Object.keys(JSON.parse(r.stdout)), ['pid']);
    assert.equal(JSON.parse(ok(host, 'qm', ['guest', 'exec-status', '1001', String(pid)])), { exited: 0 });
    spawnSync('sleep', ['3.2']);
    assert.equal(JSON.parse(ok(host, 'qm', ['guest', 'exec-status', '1001', String(pid)])), { exitcode: 0, exited: 1, 'out-data': 'status: done\n' });
    assert.is(host.run('qm', ['guest', 'exec-status', '1001', String(pid)]).stderr, "Agent error: Invalid parameter 'pid'\n");
    // with a longer --timeout the same command completes synchronously
    assert.equal(JSON.parse(ok(host, 'qm', ['guest', 'exec', '1001', '--timeout', '400', '--', '/bin/bash', '-c', 'cloud-init status --wait'])), { exitcode: 0, exited: 1, 'out-data': 'status: done\n' });

    assert.is(host.run('qm', ['destroy', '1001']).stderr, 'VM 1001 is running - destroy failed\n');
    ok(host, 'qm', ['stop', '1001']);
    ok(host, 'qm', ['stop', '1001']); // qm stop of a stopped VM is quiet
    assert.is(host.run('qm', ['guest', 'exec', '1001', '--', 'true']).stderr, 'VM 1001 is not running\n');
    ok(host, 'qm', ['destroy', '1001']);
    assert.is(host.run('qm', ['status', '1001']).stderr, "Configuration file 'nodes/pve/qemu-server/1001.conf' does not exist\n");
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// firewall, zfs, pvesh, pvesm

test('pve-firewall compile rejects -iface (only -i exists) and ignores files PVE does not read', () => {
  const host = createSimHost();
  try {
    const fwDir = path.join(host.stateDir, 'pve', 'firewall');
    fs.writeFileSync(
      path.join(fwDir, 'cluster.fw'),
      [
        '[OPTIONS]',
        'enable: 1',
        'policy_in: DROP',
        '',
        '[RULES]',
        'IN ACCEPT -i lo',
        'IN ACCEPT -iface eth1 -p tcp -dport 80 -log nolog # public http',
        'IN ACCEPT -proto tcp -source 10.0.0.153 -dest 10.0.0.12 -dport 8443 # mesh',
        'IN ACCEPT --proto udp --dport 53 -source 10.0.0.0/24',
        'IN ACCEPT -p tcp -dport 99999',
        'IN ACCEPT -dport 22',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(fwDir, 'pve.fw'), '[OPTIONS]\nenable: 1\n[RULES]\nIN BOGUS\n');
    const r = host.run('pve-firewall', ['compile']);
    assert.is(r.code, 0);
    assert.match(r.stderr, '/etc/pve/firewall/cluster.fw (line 7): unable to parse rule parameters: -iface eth1 -p tcp -dport 80 -log nolog');
    assert.match(r.stderr, '/etc/pve/firewall/cluster.fw (line 10) - errors in rule parameters: IN ACCEPT -p tcp -dport 99999\n  dport: invalid port');
    assert.match(r.stderr, "/etc/pve/firewall/cluster.fw (line 11) - errors in rule parameters: IN ACCEPT -dport 22\n  proto: missing property - 'dport' requires this property");
    assert.not.match(r.stderr, 'pve.fw', '<hostname>.fw is not a file pve-firewall reads');
    assert.match(r.stdout, '-A PVEFW-HOST-IN -i lo -j ACCEPT');
    assert.match(r.stdout, '-s 10.0.0.153 -d 10.0.0.12 -p tcp --dport 8443 -j ACCEPT');
    assert.match(r.stdout, '-s 10.0.0.0/24 -p udp --dport 53 -j ACCEPT');
    assert.not.match(r.stdout, '--dport 80 ');
    assert.match(r.stdout, /detected changes\n$/);

    // guest files: -i must name a netN; only guests that exist are read
    ok(host, 'pct', ['create', '101', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8']);
    fs.writeFileSync(path.join(fwDir, '101.fw'), '[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -i eth0 -p tcp -dport 443\nIN ACCEPT -i net0 -p tcp -dport 443\n');
    fs.writeFileSync(path.join(fwDir, '555.fw'), '[RULES]\nIN NONSENSE\n');
    const guest = host.run('pve-firewall', ['compile']);
    assert.match(guest.stderr, "/etc/pve/firewall/101.fw (line 5) - errors in rule parameters: IN ACCEPT -i eth0 -p tcp -dport 443\n  iface: value does not match the regex pattern 'net\\d+'");
    assert.not.match(guest.stderr, '555.fw');
    assert.match(guest.stdout, '-A veth101i0-IN -p tcp --dport 443 -j ACCEPT');

    assert.match(ok(host, 'pve-firewall', ['status']), 'Status: enabled/running (pending changes)');
    ok(host, 'pve-firewall', ['restart']);
    assert.is(ok(host, 'pve-firewall', ['status']), 'Status: enabled/running\n');
    ok(host, 'pve-firewall', ['stop']);
    assert.is(ok(host, 'pve-firewall', ['status']), 'Status: enabled/stopped\n');
  } finally {
    host.dispose();
  }
});

test('zfs and zpool: formats and refusals', () => {
  const host = createSimHost();
  try {
    let r = host.run('zfs', ['create', 'quickOS/a/b']);
    assert.is(r.code, 1);
    assert.is(r.stderr, "cannot create 'quickOS/a/b': parent does not exist\n");
    ok(host, 'zfs', ['create', '-p', '-o', 'recordsize=16K', 'quickOS/a/b']);
    assert.is(host.run('zfs', ['create', 'quickOS/a']).stderr, "cannot create 'quickOS/a': dataset already exists\n");
    assert.is(host.run('zfs', ['create', 'nopool/x']).stderr, "cannot create 'nopool/x': no such pool 'nopool'\n");
    assert.is(ok(host, 'zfs', ['list', '-H', '-o', 'name', '-r', 'quickOS/a']), 'quickOS/a\nquickOS/a/b\n');
    assert.is(ok(host, 'zfs', ['get', '-H', '-o', 'value,source', 'recordsize', 'quickOS/a/b']), '16K\tlocal\n');
    assert.is(ok(host, 'zfs', ['get', '-H', '-o', 'value,source', 'compression', 'quickOS/a/b']), 'lz4\tinherited from quickOS\n');
    ok(host, 'zfs', ['set', 'compression=zstd', 'quickOS/a']);
    assert.is(ok(host, 'zfs', ['get', '-H', '-o', 'value', 'compression', 'quickOS/a/b']), 'zstd\n');
    assert.is(host.run('zfs', ['set', 'foo=bar', 'quickOS/a']).stderr, "cannot set property for 'quickOS/a': invalid property 'foo'\n");
    ok(host, 'zfs', ['set', 'phoenix:role=test', 'quickOS/a']);
    r = host.run('zfs', ['destroy', 'quickOS/a']);
    assert.is(r.code, 1);
    assert.is(r.stderr, "cannot destroy 'quickOS/a': filesystem has children\nuse '-r' to destroy the following datasets:\nquickOS/a/b\n");
    ok(host, 'zfs', ['destroy', '-r', 'quickOS/a']);
    assert.is(host.run('zfs', ['list', 'quickOS/a']).stderr, "cannot open 'quickOS/a': dataset does not exist\n");
    assert.match(ok(host, 'zfs', ['list']), /^NAME\s+USED\s+AVAIL\s+REFER\s+MOUNTPOINT\n/);
    assert.match(ok(host, 'zpool', ['status', 'quickOS']), /pool: quickOS\n state: ONLINE[\s\S]*mirror-0[\s\S]*errors: No known data errors/);
    assert.is(host.run('zpool', ['status', 'nope']).stderr, "cannot open 'nope': no such pool\n");
    assert.is(host.run('zfs', ['frobnicate']).code, 2);
  } finally {
    host.dispose();
  }
});

test('pvesh: json and text output, unknown paths and nodes', () => {
  const host = createSimHost();
  try {
    withRunningCt(host, '101');
    const cts = JSON.parse(ok(host, 'pvesh', ['get', '/nodes/pve/lxc', '--output-format', 'json'])) as Array<{ vmid: number; status: string; name: string }>;
    assert.equal(cts.map((c) => [c.vmid, c.status, c.name]), [[101, 'running', 'ct101']]);
    const resources = JSON.parse(ok(host, 'pvesh', ['get', '/cluster/resources', '--type', 'vm', '--output-format', 'json'])) as Array<{ id: string }>;
    assert.equal(resources.map((r) => r.id), ['lxc/101']);
    const text = ok(host, 'pvesh', ['get', '/nodes']);
    assert.match(text, /^┌.*┐\n│ node .*│\n╞/);
    let r = host.run('pvesh', ['get', '/nodes/pve/bogus']);
    assert.is(r.code, 255);
    assert.is(r.stderr, "no 'get' handler for '/nodes/pve/bogus'\n");
    r = host.run('pvesh', ['get', '/nodes/other/lxc']);
    assert.match(r.stderr, "hostname lookup 'other' failed");
    assert.is(JSON.parse(ok(host, 'pvesh', ['get', '/nodes/pve/lxc/101/status/current', '--output-format', 'json'])).status, 'running');
  } finally {
    host.dispose();
  }
});

test('pvesm and pveam: path, alloc/free, download', () => {
  const host = createSimHost();
  try {
    assert.is(ok(host, 'pvesm', ['path', `local:vztmpl/${DEFAULT_TEMPLATE}`]), `/var/lib/vz/template/cache/${DEFAULT_TEMPLATE}\n`);
    assert.is(ok(host, 'pvesm', ['alloc', 'quickOS-vm-disks', '99999', 'vm-99999-disk-shared', '10G']), "successfully created 'quickOS-vm-disks:vm-99999-disk-shared'\n");
    assert.match(host.run('pvesm', ['alloc', 'quickOS-vm-disks', '99999', 'disk-x', '10G']).stderr, "illegal name 'disk-x' - should be 'vm-99999-*'");
    assert.is(ok(host, 'pvesm', ['path', 'quickOS-vm-disks:vm-99999-disk-shared']), '/dev/zvol/quickOS/vm-disks/vm-99999-disk-shared\n');
    ok(host, 'pvesm', ['free', 'quickOS-vm-disks:vm-99999-disk-shared']);
    assert.is(host.run('pvesm', ['status', '--storage', 'nope']).stderr, "storage 'nope' does not exist\n");

    const tmpl = 'debian-12-standard_12.7-1_amd64.tar.zst';
    assert.match(ok(host, 'pveam', ['available', '--section', 'system']), tmpl);
    assert.match(ok(host, 'pveam', ['download', 'fastData-shared-iso', tmpl]), `/fastData/shared-iso/template/cache/${tmpl}`);
    assert.match(ok(host, 'pveam', ['download', 'fastData-shared-iso', tmpl]), 'no need to download');
    assert.match(host.run('pveam', ['download', 'fastData-shared-iso', 'nope.tar.zst']).stderr, 'template: no such template');
    assert.is(host.run('pveam', ['download', 'quickOS-vm-disks', tmpl]).stderr, "storage 'quickOS-vm-disks' does not support templates\n");
    ok(host, 'pct', ['create', '200', `fastData-shared-iso:vztmpl/${tmpl}`, '--rootfs', 'local-lvm:4']);
    assert.is(host.readConfig('lxc', 200)!.main.props.ostype, 'debian');
  } finally {
    host.dispose();
  }
});

test.run();
