// The simulated host is no kinder than Proxmox VE about users and groups:
// container id maps as LXC applies them (pct start), file access inside a
// container through those maps (bind mounts hold host ids), `nginx -t`
// opening what the configuration names, and pvesh's view of a node that is
// not in a cluster.

import fs from 'node:fs';
import path from 'node:path';

import { test } from 'uvu';
import * as assert from 'uvu/assert';

import { createSimHost, DEFAULT_TEMPLATE, type SimHost } from './index.mts';

const TEMPLATE = `fastData-shared-iso:vztmpl/${DEFAULT_TEMPLATE}`;
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** Ownership is enforced only when the simulator runs as root (see test/simhost/README.md). */
const rootTest = asRoot ? test : test.skip;

function ok(host: SimHost, tool: string, args: string[], input?: string): string {
  const r = host.run(tool, args, input === undefined ? {} : { input });
  assert.is(r.code, 0, `${tool} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const exec = (host: SimHost, id: string, ...argv: string[]) => host.run('pct', ['exec', id, '--', ...argv]);

/** A host directory under the simulated host root, bind-mounted at `guest` in an unprivileged CT. */
function unprivilegedWithMount(host: SimHost, id: string, guest: string): string {
  const dir = path.join(host.stateDir, 'hostfs', 'srv', `ct${id}`);
  fs.mkdirSync(dir, { recursive: true });
  ok(host, 'pct', ['create', id, TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8', '--unprivileged', '1', '--mp0', `/srv/ct${id},mp=${guest}`]);
  ok(host, 'pct', ['start', id]);
  return dir;
}

// ---------------------------------------------------------------------------
// pct start and the id maps

test('pct start: container root must be mapped, entries must not overlap, host ranges must be in subuid/subgid', () => {
  const host = createSimHost();
  try {
    const conf = path.join(host.stateDir, 'pve', 'lxc', '102.conf');
    ok(host, 'pct', ['create', '102', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8', '--unprivileged', '1']);
    const base = fs.readFileSync(conf, 'utf8');
    assert.is(fs.readFileSync(path.join(host.stateDir, 'hostfs', 'etc', 'subuid'), 'utf8'), 'root:100000:65536\n', 'a fresh node delegates what PVE does');

    // Only uid entries: no gid entry maps gid 0.
    fs.writeFileSync(conf, `${base}lxc.idmap: u 0 100000 65536\n`);
    let r = host.run('pct', ['start', '102']);
    assert.is(r.code, 255);
    assert.match(r.stderr, 'No gid mapping for container root');
    assert.match(r.stderr, /startup for container '102' failed\n$/);

    // A host range outside /etc/subuid: newuidmap refuses it.
    const passthrough = 'lxc.idmap: u 0 100000 33\nlxc.idmap: u 33 33 1\nlxc.idmap: u 34 100034 65502\nlxc.idmap: g 0 100000 65536\n';
    fs.writeFileSync(conf, base + passthrough);
    r = host.run('pct', ['start', '102']);
    assert.is(r.code, 255);
    assert.match(r.stderr, 'newuidmap: uid range [33-34) -> [33-34) not allowed');
    assert.match(r.stderr, /startup for container '102' failed\n$/);
    // Several subuid lines add up; a line that does not parse is ignored.
    fs.appendFileSync(path.join(host.stateDir, 'hostfs', 'etc', 'subuid'), 'garbage\nroot:33:1\n');
    ok(host, 'pct', ['start', '102']);
    ok(host, 'pct', ['stop', '102']);

    // Two gid entries mapping the same container ids.
    fs.writeFileSync(conf, `${base}lxc.idmap: u 0 100000 65536\nlxc.idmap: g 0 100000 65536\nlxc.idmap: g 10 100010 5\n`);
    r = host.run('pct', ['start', '102']);
    assert.is(r.code, 255);
    assert.match(r.stderr, 'newgidmap: write to gid_map failed: Invalid argument');

    // The default map of an unprivileged CT needs its range delegated too.
    fs.writeFileSync(conf, base);
    fs.writeFileSync(path.join(host.stateDir, 'hostfs', 'etc', 'subgid'), 'root:200000:65536\n');
    r = host.run('pct', ['start', '102']);
    assert.is(r.code, 255);
    assert.match(r.stderr, 'newgidmap: gid range [0-65536) -> [100000-165536) not allowed');
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// files through the map

rootTest('bind mounts: host root\'s 0600 files are out of reach of container root; mapped owners are container root', () => {
  const host = createSimHost();
  try {
    const dir = unprivilegedWithMount(host, '101', '/etc/nginx/ssl');
    fs.writeFileSync(path.join(dir, 'host.key'), 'HOST\n', { mode: 0o600 });
    fs.chownSync(path.join(dir, 'host.key'), 0, 33);
    fs.writeFileSync(path.join(dir, 'ct.key'), 'CT\n', { mode: 0o640 });
    fs.chownSync(path.join(dir, 'ct.key'), 100000, 100033);

    let r = exec(host, '101', 'cat', '/etc/nginx/ssl/host.key');
    assert.is(r.code, 1);
    assert.is(r.stderr, 'cat: /etc/nginx/ssl/host.key: Permission denied\n');
    assert.is(exec(host, '101', 'test', '-r', '/etc/nginx/ssl/host.key').code, 1);
    assert.is(exec(host, '101', 'sh', '-c', 'cat < /etc/nginx/ssl/host.key').stderr, 'sh: 1: cannot open /etc/nginx/ssl/host.key: Permission denied\n');
    r = exec(host, '101', 'chown', 'root:www-data', '/etc/nginx/ssl/host.key');
    assert.is(r.code, 1);
    assert.is(r.stderr, "chown: changing ownership of '/etc/nginx/ssl/host.key': Operation not permitted\n");
    r = exec(host, '101', 'chmod', '644', '/etc/nginx/ssl/host.key');
    assert.is(r.stderr, "chmod: changing permissions of '/etc/nginx/ssl/host.key': Operation not permitted\n");

    assert.is(exec(host, '101', 'stat', '-c', '%u %g %a %U %G %n', '/etc/nginx/ssl/host.key', '/etc/nginx/ssl/ct.key').stdout, '65534 65534 600 nobody nogroup /etc/nginx/ssl/host.key\n0 33 640 root www-data /etc/nginx/ssl/ct.key\n');
    assert.is(exec(host, '101', 'cat', '/etc/nginx/ssl/ct.key').stdout, 'CT\n');
    // www-data reads it through its group; nobody else does.
    assert.is(exec(host, '101', 'setpriv', '--reuid=www-data', '--regid=www-data', '--clear-groups', 'cat', '/etc/nginx/ssl/ct.key').stdout, 'CT\n');
    r = exec(host, '101', 'setpriv', '--reuid', 'daemon', '--regid', 'daemon', '--init-groups', '--', 'cat', '/etc/nginx/ssl/ct.key');
    assert.is(r.stderr, 'cat: /etc/nginx/ssl/ct.key: Permission denied\n');
    assert.is(exec(host, '101', 'setpriv', '--reuid=33', '--regid=33', 'id', '-u').stderr, 'setpriv: --[re]gid requires --keep-groups, --clear-groups, --init-groups, or --groups\n');
    assert.is(exec(host, '101', 'setpriv', '--reuid=33', '--regid=33', '--clear-groups', 'id', '-u').stdout, '33\n');

    // Container root may chown what it owns, to mapped ids; a non-root subject may not.
    ok(host, 'pct', ['exec', '101', '--', 'chown', 'root:root', '/etc/nginx/ssl/ct.key']);
    assert.is(fs.statSync(path.join(dir, 'ct.key')).gid, 100000);
    assert.is(exec(host, '101', 'setpriv', '--reuid=33', '--regid=33', '--clear-groups', 'chown', '33', '/etc/nginx/ssl/ct.key').code, 1);

    // The mount's directory is host root's 0755: container root cannot create in it, even with pct push.
    r = exec(host, '101', 'touch', '/etc/nginx/ssl/new.key');
    assert.is(r.stderr, "touch: cannot touch '/etc/nginx/ssl/new.key': Permission denied\n");
    r = host.run('pct', ['push', '101', path.join(dir, 'ct.key'), '/etc/nginx/ssl/pushed.key']);
    assert.is(r.code, 255);
    assert.is(r.stderr, 'failed to create file: /etc/nginx/ssl/pushed.key: Permission denied\n');
    // Made over to the container's root, it can; what it creates carries its mapped ids.
    fs.chownSync(dir, 100000, 100000);
    ok(host, 'pct', ['exec', '101', '--', 'sh', '-c', 'echo x > /etc/nginx/ssl/made && mkdir /etc/nginx/ssl/sub']);
    ok(host, 'pct', ['push', '101', path.join(dir, 'made'), '/etc/nginx/ssl/pushed.key', '--group', 'www-data']);
    for (const [name, uid, gid] of [['made', 100000, 100000], ['sub', 100000, 100000], ['pushed.key', 100000, 100033]] as const) {
      const st = fs.statSync(path.join(dir, name));
      assert.equal([st.uid, st.gid], [uid, gid], name);
    }
  } finally {
    host.dispose();
  }
});

rootTest('guest-local files belong to container root unless a guest chown changed them; stat, getent and id answer from the guest', () => {
  const host = createSimHost();
  try {
    ok(host, 'pct', ['create', '103', TEMPLATE, '--rootfs', 'quickOS-lxc-disks:8', '--unprivileged', '1']);
    ok(host, 'pct', ['start', '103']);
    ok(host, 'pct', ['exec', '103', '--', 'sh', '-c', 'mkdir -p /etc/app && echo secret > /etc/app/key && chmod 600 /etc/app/key']);
    assert.is(exec(host, '103', 'setpriv', '--reuid=www-data', '--regid=www-data', '--clear-groups', 'cat', '/etc/app/key').code, 1);
    ok(host, 'pct', ['exec', '103', '--', 'chown', 'www-data:www-data', '/etc/app/key']);
    assert.is(exec(host, '103', 'stat', '-c', '%U:%G %a', '/etc/app/key').stdout, 'www-data:www-data 600\n');
    assert.is(exec(host, '103', 'setpriv', '--reuid=www-data', '--regid=www-data', '--clear-groups', 'cat', '/etc/app/key').stdout, 'secret\n');
    let r = exec(host, '103', 'chown', '70000', '/etc/app/key');
    assert.is(r.stderr, "chown: changing ownership of '/etc/app/key': Invalid argument\n", 'ids beyond the map cannot be given');
    r = exec(host, '103', 'setpriv', '--reuid=33', '--regid=33', '--clear-groups', 'touch', '/root/x');
    assert.is(r.stderr, "touch: cannot touch '/root/x': Permission denied\n");
    ok(host, 'pct', ['exec', '103', '--', 'setpriv', '--reuid=33', '--regid=33', '--clear-groups', 'touch', '/tmp/by-www-data']);
    assert.is(exec(host, '103', 'stat', '-c', '%u:%g', '/tmp/by-www-data').stdout, '33:33\n');
    assert.is(exec(host, '103', 'getent', 'passwd', 'www-data').stdout, 'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n');
    assert.is(exec(host, '103', 'getent', 'group', '33').stdout, 'www-data:x:33:\n');
    assert.is(exec(host, '103', 'getent', 'passwd', 'nosuch').code, 2);
    assert.is(exec(host, '103', 'stat', '-c', '%U', '/nonexistent').stderr, "stat: cannot statx '/nonexistent': No such file or directory\n");
    // pct push opens its target with O_NOFOLLOW; links resolve inside the guest.
    ok(host, 'pct', ['exec', '103', '--', 'ln', '-s', '/etc/app/key', '/tmp/link']);
    assert.is(exec(host, '103', 'readlink', '/tmp/link').stdout, '/etc/app/key\n');
    const pushed = host.run('pct', ['push', '103', host.guestPath(103, '/etc/hostname'), '/tmp/link']);
    assert.is(pushed.stderr, 'failed to create file: /tmp/link: Too many levels of symbolic links\n');
    ok(host, 'pct', ['exec', '103', '--', 'chown', '4242', '/tmp/by-www-data']);
    assert.is(exec(host, '103', 'stat', '-c', '%U %u', '/tmp/by-www-data').stdout, 'UNKNOWN 4242\n');
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// nginx -t

rootTest('nginx -t: includes, symlinks inside the guest, certificates opened as root through the map', () => {
  const host = createSimHost();
  try {
    const dir = unprivilegedWithMount(host, '104', '/etc/nginx/ssl');
    ok(host, 'pct', ['exec', '104', '--', 'bash', '-s'], 'apt-get install -y nginx libnginx-mod-stream\n');
    const success = 'nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\nnginx: configuration file /etc/nginx/nginx.conf test is successful\n';
    let r = exec(host, '104', 'nginx', '-t');
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr, success);
    assert.ok(fs.lstatSync(host.guestPath(104, '/etc/nginx/sites-enabled/default')).isSymbolicLink(), 'Debian enables its default site by a link');

    fs.writeFileSync(path.join(dir, 'site.crt'), 'CERT\n', { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'site.key'), 'KEY\n', { mode: 0o600 });
    fs.writeFileSync(host.guestPath(104, '/etc/nginx/sites-available/tls'), 'server {\n  listen 443 ssl; # a comment; with {\n  ssl_certificate "/etc/nginx/ssl/site.crt";\n  ssl_certificate_key /etc/nginx/ssl/site.key;\n  ssl_client_certificate /etc/nginx/ssl/$ssl_server_name.pem;\n}\n');
    ok(host, 'pct', ['exec', '104', '--', 'ln', '-s', '/etc/nginx/sites-available/tls', '/etc/nginx/sites-enabled/tls']);
    r = exec(host, '104', 'nginx', '-t');
    assert.is(r.code, 1);
    assert.is(
      r.stderr,
      'nginx: [emerg] cannot load certificate key "/etc/nginx/ssl/site.key": BIO_new_file() failed (SSL: error:8000000D:system library::Permission denied:calling fopen(/etc/nginx/ssl/site.key, r) error:10080002:BIO routines::system lib)\nnginx: configuration file /etc/nginx/nginx.conf test failed\n',
    );
    fs.chownSync(path.join(dir, 'site.key'), 100000, 100000);
    assert.is(exec(host, '104', 'nginx', '-t').code, 0);
    fs.rmSync(path.join(dir, 'site.crt'));
    assert.match(exec(host, '104', 'nginx', '-t').stderr, 'nginx: [emerg] cannot load certificate "/etc/nginx/ssl/site.crt": BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory:calling fopen(/etc/nginx/ssl/site.crt, r) error:10000080:BIO routines::no such file)\n');
    ok(host, 'pct', ['exec', '104', '--', 'rm', '/etc/nginx/sites-enabled/tls']);

    fs.writeFileSync(host.guestPath(104, '/etc/nginx/conf.d/extra.conf'), '# first line\ninclude snippets/absent.conf;\n');
    r = exec(host, '104', 'nginx', '-t');
    assert.is(r.stderr, 'nginx: [emerg] open() "/etc/nginx/snippets/absent.conf" failed (2: No such file or directory) in /etc/nginx/conf.d/extra.conf:2\nnginx: configuration file /etc/nginx/nginx.conf test failed\n');
    fs.writeFileSync(host.guestPath(104, '/etc/nginx/conf.d/extra.conf'), 'include snippets/*.none;\n');
    assert.is(exec(host, '104', 'nginx', '-t', '-q').stderr, '', 'a glob matching nothing is fine; -q keeps quiet');

    // stream {} needs the module libnginx-mod-stream enables.
    fs.appendFileSync(host.guestPath(104, '/etc/nginx/nginx.conf'), 'stream {\n}\n');
    assert.is(exec(host, '104', 'nginx', '-t').code, 0);
    ok(host, 'pct', ['exec', '104', '--', 'rm', '/etc/nginx/modules-enabled/50-mod-stream.conf']);
    assert.match(exec(host, '104', 'nginx', '-t').stderr, /unknown directive "stream" in \/etc\/nginx\/nginx.conf:\d+/);

    // A scripted answer still wins over the stand-in.
    host.injectExec({ tool: 'pct', guest: 104, command: ['nginx', '-t'], exit: 0, stderr: 'scripted\n' });
    assert.is(exec(host, '104', 'nginx', '-t').stderr, 'scripted\n');
  } finally {
    host.dispose();
  }
});

// ---------------------------------------------------------------------------
// pvesh on a node outside any cluster

rootTest('install -D -m from stdin creates the file with its parents as the acting user; refused where that user may not write', () => {
  const host = createSimHost();
  try {
    const dir = unprivilegedWithMount(host, '104', '/srv/data');
    ok(host, 'pct', ['exec', '104', '--', 'install', '-D', '-m', '0600', '/dev/stdin', '/tmp/handover/key.pem'], 'secret\n');
    assert.is(fs.readFileSync(host.guestPath('104', '/tmp/handover/key.pem'), 'utf8'), 'secret\n');
    assert.is(exec(host, '104', 'stat', '-c', '%U:%G %a', '/tmp/handover/key.pem').stdout.trim(), 'root:root 600');
    // The bind-mounted host directory still belongs to host root: the container's root may not write there.
    const r = host.run('pct', ['exec', '104', '--', 'install', '-m', '0644', '/dev/stdin', '/srv/data/cert.pem'], { input: 'x' });
    assert.is(r.code, 1);
    assert.match(r.stderr, "install: cannot create regular file '/srv/data/cert.pem': Permission denied");
    assert.not.ok(fs.existsSync(path.join(dir, 'cert.pem')));
  } finally {
    host.dispose();
  }
});

test('pvesh: /cluster/status of a lone node, /nodes as PVE 8 prints it, /nodes/<node> index', () => {
  const host = createSimHost();
  try {
    const status = JSON.parse(ok(host, 'pvesh', ['get', '/cluster/status', '--output-format', 'json'])) as Array<Record<string, unknown>>;
    assert.equal(status, [{ id: 'node/pve', ip: '192.168.1.50', level: '', local: 1, name: 'pve', nodeid: 0, online: 1, type: 'node' }], 'no cluster entry; the local node flagged');
    const nodes = JSON.parse(ok(host, 'pvesh', ['get', '/nodes', '--output-format', 'json'])) as Array<Record<string, unknown>>;
    assert.equal(Object.keys(nodes[0]!).sort(), ['cpu', 'disk', 'id', 'level', 'maxcpu', 'maxdisk', 'maxmem', 'mem', 'node', 'ssl_fingerprint', 'status', 'type', 'uptime']);
    const table = ok(host, 'pvesh', ['get', '/nodes', '--noborder', '--noheader']).trim().split(/\s+/);
    assert.equal(table.slice(0, 3), ['pve', 'online', '2.00%'], 'schema columns: node, status, then the optional ones, rendered');
    assert.match(ok(host, 'pvesh', ['get', '/nodes', '--noborder']), /^node\s+status\s+cpu\s+level\s+maxcpu\s+maxmem\s+mem\s+ssl_fingerprint\s+uptime\n/);
    const index = JSON.parse(ok(host, 'pvesh', ['get', '/nodes/pve', '--output-format', 'json'])) as Array<Record<string, unknown>>;
    assert.ok(index.every((e) => typeof e.name === 'string' && e.subdir === undefined), 'the node index lists `name` entries');
    assert.ok(index.some((e) => e.name === 'qemu') && index.some((e) => e.name === 'lxc'));
    const resources = JSON.parse(ok(host, 'pvesh', ['get', '/cluster/resources', '--type', 'node', '--output-format', 'json'])) as Array<Record<string, unknown>>;
    assert.is(resources[0]!.ssl_fingerprint, undefined);
  } finally {
    host.dispose();
  }
});

test.run();
