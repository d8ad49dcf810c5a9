// The gateway (CT 101) and mesh (CT 102) application scripts, end to end on
// the simulated host: what they push and with which modes, what they run in
// the container and in which order, that a second run on an unchanged
// container sends nothing that changes it, that dry-run changes nothing,
// that a configuration nginx refuses is put back without a reload, and that
// waiting for the CA is bounded.
//
// The simulator's guests run nothing, so where a real program would leave a
// trace (apt installing nginx, ln, update-ca-certificates, step bootstrap)
// the tests set that trace up themselves before the second run.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

const TEMPLATE = 'fastData-shared-iso:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst';
const SCRIPT_101 = path.join(PROJECT_ROOT, 'scripts', 'phoenix_hypervisor_lxc_101.mjs');
const SCRIPT_102 = path.join(PROJECT_ROOT, 'scripts', 'phoenix_hypervisor_lxc_102.mjs');
const SCHEMAS = path.join(PROJECT_ROOT, 'test', 'fixtures', 'traefik');

const host = createSimHost();
const work = tmpDir('phoenix-gwapps-');
/** The host's own files (PHOENIX_HOST_ROOT): the root CA copy lives below it. */
const hostRoot = path.join(work, 'hostfs');
const ROOT_CA_PATH = '/etc/phoenix/ca/root_ca.crt';
const rootCaFile = path.join(hostRoot, ROOT_CA_PATH);

// A real root CA for the host copy: the scripts parse it and compute its fingerprint.
fs.mkdirSync(path.dirname(rootCaFile), { recursive: true });
const made = spawnSync('openssl', [
  'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
  '-subj', '/CN=Phoenix Gateway Test Root', '-keyout', path.join(work, 'root.key'), '-out', rootCaFile,
], { encoding: 'utf8' });
assert.is(made.status, 0, made.stderr);
const ROOT_PEM = fs.readFileSync(rootCaFile, 'utf8');
const FINGERPRINT = new X509Certificate(ROOT_PEM).fingerprint256.replace(/:/g, '').toLowerCase();

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A fresh base directory with the example manifests, the host root CA copy at `rootCaFile`. */
function freshBase(edit: (m: { hv: Json; lxc: Json }) => void = () => {}): string {
  const base = tmpDir('phoenix-gwapps-base-');
  fs.mkdirSync(path.join(base, 'etc'));
  for (const file of fs.readdirSync(path.join(PROJECT_ROOT, 'etc'))) {
    if (file.endsWith('.json')) fs.copyFileSync(path.join(PROJECT_ROOT, 'etc', file), path.join(base, 'etc', file));
  }
  editManifests(base, (m) => {
    m.hv.step_ca.root_ca_file = ROOT_CA_PATH;
    edit(m);
  });
  return base;
}

function editManifests(base: string, edit: (m: { hv: Json; lxc: Json }) => void): void {
  const file = (name: string) => path.join(base, 'etc', name);
  const m = { hv: JSON.parse(fs.readFileSync(file('phoenix_hypervisor_config.json'), 'utf8')), lxc: JSON.parse(fs.readFileSync(file('phoenix_lxc_configs.json'), 'utf8')) };
  edit(m);
  fs.writeFileSync(file('phoenix_hypervisor_config.json'), JSON.stringify(m.hv, null, 2));
  fs.writeFileSync(file('phoenix_lxc_configs.json'), JSON.stringify(m.lxc, null, 2));
}

function run(script: string, base: string, args: string[], extraEnv: Record<string, string> = {}) {
  const env: Record<string, string | undefined> = {
    ...host.env,
    PATH: `${host.env.PATH}${path.delimiter}/usr/sbin`,
    PHOENIX_BASE_DIR: base,
    PHOENIX_HOST_ROOT: hostRoot,
    MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
    PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
    PHOENIX_POLL_INTERVAL_MS: '50',
    PHOENIX_PVE_LOCK_DELAY_MS: '10',
    ...extraEnv,
  };
  for (const key of ['PHOENIX_DRY_RUN', 'PHOENIX_DEBUG', 'PHOENIX_RECORD', 'PHOENIX_LOCK_TOKEN', 'HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'STACKS_CONFIG_FILE']) {
    if (!(key in extraEnv)) delete env[key];
  }
  const started = Date.now();
  const result = spawnSync(process.execPath, [script, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}

/** A clean simulated host with running containers. */
function freshHost(...ctids: string[]): void {
  host.reset();
  host.setInjection({});
  for (const ctid of ctids) {
    for (const argv of [['create', ctid, TEMPLATE, '--hostname', `ct${ctid}`, '--storage', 'quickOS-lxc-disks', '--unprivileged', '1'], ['start', ctid]]) {
      const r = host.run('pct', argv);
      assert.is(r.code, 0, `pct ${argv.join(' ')}: ${r.stderr}${r.stdout}`);
    }
  }
  host.clearCalls();
}

function guestWrite(ctid: string, file: string, content = '', mode = 0o644): void {
  const target = host.guestPath(ctid, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, content);
  fs.chmodSync(target, mode);
}

function guestRead(ctid: string, file: string): string | undefined {
  try {
    return fs.readFileSync(host.guestPath(ctid, file), 'utf8');
  } catch {
    return undefined;
  }
}

const line = (c: CallRecord) => c.argv.join(' ');
const pctCalls = () => host.calls('pct').map(line);
const pushes = () => host.calls('pct').filter((c) => c.argv[0] === 'push');
/** Guest commands that only look (what a run on an unchanged container may send). */
const READ_ONLY = /^exec \d+ -- (cat |test |dpkg-query |ls |which |stat |readlink |find |systemctl is-(active|enabled) |step ca health )/;
const changing = () => host.calls('pct').filter((c) => !['status', 'config'].includes(c.argv[0] as string) && !READ_ONLY.test(line(c)));

const ajv = new Ajv({ strict: false, allErrors: true });
const validateStatic = ajv.compile(JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'traefik-v3.json'), 'utf8')));
const validateDynamic = ajv.compile(JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'traefik-v3-file-provider.json'), 'utf8')));

// ---------------------------------------------------------------- CT 101

const GATEWAY_TLS = [
  '/etc/nginx/ssl/nginx.internal.example.org.crt',
  '/etc/nginx/ssl/nginx.internal.example.org.key',
  '/etc/nginx/ssl/nginx-gateway-client.crt',
  '/etc/nginx/ssl/nginx-gateway-client.key',
];

/** CT 101 as the clone leaves it before its script: Debian's default site, certificates from the renewal manager, a stream file sync wrote. */
function gatewayCt(): void {
  freshHost('101');
  guestWrite('101', '/etc/nginx/sites-available/default', 'server { listen 80 default_server; }\n');
  guestWrite('101', '/etc/nginx/conf.d/keep.conf', '# an operator\'s\n');
  guestWrite('101', '/etc/nginx/sites-enabled/default', 'server { listen 80 default_server; }\n');
  guestWrite('101', '/etc/nginx/stream.d/other.conf', '# written by sync\n');
  for (const file of GATEWAY_TLS) guestWrite('101', file, `${path.basename(file)}\n`, file.endsWith('.key') ? 0o600 : 0o644);
}

const SITE_ENABLED = '/etc/nginx/sites-enabled/gateway';
const SITE_LINK = '../sites-available/gateway';

/** What `ln -sfT` would have left: the link itself, and readlink's answer (the simulator does not run readlink). */
function siteLinked(): void {
  const target = host.guestPath('101', SITE_ENABLED);
  fs.rmSync(target, { force: true });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.symlinkSync(SITE_LINK, target);
  host.injectExec({ tool: 'pct', guest: 101, command: ['readlink', '--', SITE_ENABLED], stdout: `${SITE_LINK}\n` });
}

/** What apt, ln and update-ca-certificates would have left after the first run. */
function gatewayAfterFirstRun(): void {
  host.setInjection({});
  host.injectExec({ tool: 'pct', guest: 101, command: ['dpkg-query'], stdout: 'nginx\tinstall ok installed\nlibnginx-mod-stream\tinstall ok installed\n' });
  guestWrite('101', '/etc/ssl/certs/phoenix_root_ca.pem', ROOT_PEM);
  siteLinked();
}

test('101: a fresh gateway CT gets nginx, the root CA, the generated files (0644), the site enabled, the default site gone, nginx -t before the reload; a second run changes nothing', () => {
  gatewayCt();
  const base = freshBase();
  host.injectExec({ tool: 'pct', guest: 101, command: ['systemctl', 'is-enabled'], exit: 1, times: 1 });
  host.injectExec({ tool: 'pct', guest: 101, command: ['systemctl', 'is-active'], exit: 3, stdout: 'inactive\n', times: 1 });
  const r = run(SCRIPT_101, base, ['101']);
  assert.is(r.code, 0, r.stderr);

  for (const [relative, guestPath] of [
    ['etc/nginx/nginx.conf', '/etc/nginx/nginx.conf'],
    ['etc/nginx/sites-available/gateway', '/etc/nginx/sites-available/gateway'],
    ['etc/nginx/stream.d/stream-gateway.conf', '/etc/nginx/stream.d/stream-gateway.conf'],
  ] as const) {
    const generated = fs.readFileSync(path.join(base, relative), 'utf8');
    assert.is(guestRead('101', guestPath), generated, `${guestPath} is the generated file`);
    assert.is(fs.statSync(host.guestPath('101', guestPath)).mode & 0o777, 0o644, guestPath);
    assert.ok(pushes().some((c) => c.argv[3] === guestPath && c.argv.includes('0644')), `${guestPath} pushed with --perms 0644`);
  }
  assert.match(guestRead('101', '/etc/nginx/sites-available/gateway') as string, /proxy_pass https:\/\/172\.16\.100\.12:8443;/);
  assert.is(guestRead('101', '/usr/local/share/ca-certificates/phoenix_root_ca.crt'), ROOT_PEM);
  assert.is(guestRead('101', '/etc/nginx/sites-enabled/default'), undefined, 'Debian default site removed (the bash re-linked it, and nginx -t failed on a second default server)');
  assert.ok(guestRead('101', '/etc/nginx/sites-available/default'), 'the package file itself stays');
  assert.is(guestRead('101', '/etc/nginx/stream.d/other.conf'), '# written by sync\n', 'other stream files are never deleted');
  assert.is(guestRead('101', '/etc/nginx/conf.d/keep.conf'), "# an operator's\n", 'conf.d is not emptied');

  const calls = pctCalls();
  const at = (re: RegExp) => calls.findIndex((c) => re.test(c));
  assert.ok(at(/^exec 101 -- bash -s -- nginx libnginx-mod-stream$/) >= 0, 'nginx and the stream module installed');
  const link = at(/^exec 101 -- ln -sfT \.\.\/sites-available\/gateway \/etc\/nginx\/sites-enabled\/gateway$/);
  assert.ok(link > at(/^push 101 \S+ \/etc\/nginx\/sites-available\/gateway /), 'sites-enabled/gateway linked to the installed site, as the bash did');
  assert.not.ok(pushes().some((c) => c.argv[3] === SITE_ENABLED), 'no copy in sites-enabled');
  const check = at(/^exec 101 -- nginx -t$/);
  assert.ok(check > link, 'nginx -t sees the link');
  const reload = at(/^exec 101 -- systemctl reload-or-restart nginx$/);
  assert.ok(check >= 0 && reload > check, 'nginx -t before the reload');
  assert.ok(at(/^exec 101 -- systemctl enable nginx$/) >= 0);
  assert.ok(calls.findLastIndex((c) => c === 'exec 101 -- systemctl is-active --quiet nginx') > reload, 'checked active after the reload');
  assert.not.ok(calls.some((c) => /listen-all|nginx-config-set/.test(c)), 'no listen-all helper');
  assert.match(r.stderr, /sha256 fingerprint [0-9a-f]{64}/);
  assert.ok(r.stderr.includes(FINGERPRINT), 'fingerprint computed from the host copy');

  // A second run on the unchanged CT pushes nothing, reloads nothing and says so.
  gatewayAfterFirstRun();
  host.clearCalls();
  const again = run(SCRIPT_101, base, ['101']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(pushes(), []);
  assert.equal(changing().map(line), [], 'only read-only probes');
  assert.match(again.stderr, /unchanged: nothing to do/);
});

test('101: --dry-run on a fresh CT changes nothing, in the CT or under the base directory', () => {
  gatewayCt();
  const base = freshBase();
  const r = run(SCRIPT_101, base, ['101', '--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(changing().map(line), []);
  assert.not.ok(fs.existsSync(path.join(base, 'etc', 'nginx')), 'nothing generated under the base directory');
  assert.ok(guestRead('101', '/etc/nginx/sites-enabled/default'), 'default site still there');
  assert.match(r.stderr, /DRY-RUN: would run: pct push 101 \S+ \/etc\/nginx\/sites-available\/gateway --perms 0644/);
  assert.match(r.stderr, /DRY-RUN: would run: pct exec 101 -- nginx -t/);
});

test('101: what the bash left: nginx-full is kept, the webroot and cache go to www-data once, a copy in sites-enabled becomes the link', () => {
  gatewayCt();
  const base = freshBase();
  // An earlier run left the site as a copy; nginx-full is installed; a file in the webroot belongs to root.
  guestWrite('101', SITE_ENABLED, '# a copy an earlier run left\n');
  host.injectExec({ tool: 'pct', guest: 101, command: ['dpkg-query'], stdout: 'nginx-full\tinstall ok installed\nnginx\tinstall ok installed\n' });
  host.injectExec({ tool: 'pct', guest: 101, command: ['find', '/var/www/html', '/var/cache/nginx'], stdout: '/var/www/html/index.nginx-debian.html\n', times: 1 });
  const r = run(SCRIPT_101, base, ['101']);
  assert.is(r.code, 0, r.stderr);
  const calls = pctCalls();
  const at = (re: RegExp) => calls.findIndex((c) => re.test(c));
  assert.not.ok(calls.some((c) => /^exec 101 -- bash -s -- .*nginx/.test(c)), 'nginx-full already carries the stream module: nothing installed');
  assert.ok(at(/^exec 101 -- mkdir -p \/var\/www\/html \/var\/cache\/nginx$/) >= 0, 'webroot and cache created');
  assert.ok(fs.statSync(host.guestPath('101', '/var/cache/nginx')).isDirectory());
  assert.ok(at(/^exec 101 -- chown -R www-data:www-data \/var\/www\/html \/var\/cache\/nginx$/) >= 0, 'given to www-data, as the bash did');
  assert.ok(at(/^exec 101 -- ln -sfT \.\.\/sites-available\/gateway \/etc\/nginx\/sites-enabled\/gateway$/) >= 0, 'the copy is replaced by the link');
  assert.match(r.stderr, /linked \/etc\/nginx\/sites-enabled\/gateway to \.\.\/sites-available\/gateway \(was a copy\)/);

  // Once linked and owned, nothing is done again.
  host.setInjection({});
  host.injectExec({ tool: 'pct', guest: 101, command: ['dpkg-query'], stdout: 'nginx-full\tinstall ok installed\nnginx\tinstall ok installed\n' });
  guestWrite('101', '/etc/ssl/certs/phoenix_root_ca.pem', ROOT_PEM);
  siteLinked();
  host.clearCalls();
  const again = run(SCRIPT_101, base, ['101']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(changing().map(line), [], 'no mkdir, chown or ln on the second run');
  assert.match(again.stderr, /unchanged: nothing to do/);
});

test('101: nginx -t failing in the CT stops before any reload and puts the previous files back', () => {
  gatewayCt();
  const base = freshBase();
  guestWrite('101', '/etc/nginx/sites-available/gateway', '# the previous gateway\n');
  guestWrite('101', SITE_ENABLED, '# the previous copy\n');
  host.injectExec({ tool: 'pct', guest: 101, command: ['nginx', '-t'], exit: 1, stderr: 'nginx: [emerg] cannot load certificate "/etc/nginx/ssl/nginx-gateway-client.crt"\nnginx: configuration file /etc/nginx/nginx.conf test failed\n' });
  const r = run(SCRIPT_101, base, ['101']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /nginx -t failed in CT 101; nginx was not reloaded/, r.stderr);
  assert.match(r.stderr, /cannot load certificate/);
  assert.not.ok(pctCalls().some((c) => /systemctl (reload|restart|reload-or-restart)/.test(c)), 'no reload');
  assert.is(guestRead('101', '/etc/nginx/sites-available/gateway'), '# the previous gateway\n', 'previous site restored');
  assert.is(guestRead('101', '/etc/nginx/stream.d/stream-gateway.conf'), undefined, 'a file that was not there before is removed again');
  const calls = pctCalls();
  const check = calls.indexOf('exec 101 -- nginx -t');
  const putBack = calls.findIndex((c, i) => i > check && c.startsWith('push 101 ') && c.includes(` ${SITE_ENABLED} `));
  assert.ok(calls.indexOf(`exec 101 -- rm -f ${SITE_ENABLED}`) > check && putBack > check, 'the link goes and the previous copy comes back');
  assert.is(guestRead('101', SITE_ENABLED), '# the previous copy\n');
});

test('101: missing certificates stop the run before anything is installed; the wrong CT and a missing CTID are refused', () => {
  gatewayCt();
  const base = freshBase();
  fs.rmSync(host.guestPath('101', GATEWAY_TLS[2] as string));
  const r = run(SCRIPT_101, base, ['101']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /certificates are missing in CT 101: \/etc\/nginx\/ssl\/nginx-gateway-client\.crt \(host \/quickOS\/lxc-persistent-data\/101\/ssl\/nginx-gateway-client\.crt\)/);
  assert.not.ok(pushes().some((c) => (c.argv[3] as string).startsWith('/etc/nginx/')), 'no nginx file pushed');

  freshHost('101', '102');
  const wrong = run(SCRIPT_101, freshBase(), ['102']);
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /CT 102 is not the gateway container: the manifests make CT 101/);
  assert.equal(changing(), []);
  const none = run(SCRIPT_101, freshBase(), []);
  assert.is(none.code, 1);
  assert.match(none.stderr, /missing CTID/);
  const help = run(SCRIPT_101, freshBase(), ['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: phoenix_hypervisor_lxc_101\.sh <CTID>/);
});

// ---------------------------------------------------------------- CT 102

const STEP_DEFAULTS = '/root/.step/config/defaults.json';

/** CT 102 as its features leave it: the step CLI, the traefik binary. The CA answers. */
function meshCt(...more: string[]): void {
  freshHost('102', ...more);
  guestWrite('102', '/usr/bin/step', '', 0o755);
  guestWrite('102', '/usr/local/bin/traefik', '', 0o755);
  fs.writeFileSync(rootCaFile, ROOT_PEM);
}

function caAnswers(): void {
  host.injectExec({ tool: 'pct', guest: 102, command: ['step', 'ca', 'health'], stdout: 'ok\n' });
  host.injectExec({ tool: 'pct', guest: 102, command: ['step', 'ca', 'bootstrap'], stdout: '' });
}

/** What step bootstrap would have written, and the mode stat reports. */
function meshAfterRun(caUrl = 'https://172.16.100.11:9000'): void {
  guestWrite('102', STEP_DEFAULTS, JSON.stringify({ 'ca-url': caUrl, fingerprint: FINGERPRINT, root: '/root/.step/certs/root_ca.crt' }));
  host.setInjection({});
  caAnswers();
  host.injectExec({ tool: 'pct', guest: 102, command: ['stat', '-c', '%a', '/etc/traefik/acme.json'], stdout: '600\n' });
}

test('102: a fresh mesh CT gets the root CA, a step bootstrap with the host-computed fingerprint, both Traefik files (valid for Traefik v3), the ACME store 0600, and Traefik started', () => {
  meshCt();
  const base = freshBase();
  caAnswers();
  host.injectExec({ tool: 'pct', guest: 102, command: ['systemctl', 'is-enabled'], exit: 1, times: 1 });
  host.injectExec({ tool: 'pct', guest: 102, command: ['systemctl', 'is-active'], exit: 3, times: 1 });
  const r = run(SCRIPT_102, base, ['102']);
  assert.is(r.code, 0, r.stderr);

  assert.is(guestRead('102', '/etc/traefik/certs/ca.pem'), ROOT_PEM);
  const staticText = guestRead('102', '/etc/traefik/traefik.yml') as string;
  const dynamicText = guestRead('102', '/etc/traefik/dynamic/dynamic_conf.yml') as string;
  assert.is(staticText, fs.readFileSync(path.join(base, 'etc', 'traefik', 'traefik.yml'), 'utf8'), 'the host keeps what it installed');
  assert.is(dynamicText, fs.readFileSync(path.join(base, 'etc', 'traefik', 'dynamic_conf.yml'), 'utf8'));
  const staticDoc: Json = parse(staticText);
  assert.ok(validateStatic(parse(staticText)), JSON.stringify(validateStatic.errors, null, 1));
  assert.ok(validateDynamic(parse(dynamicText)), JSON.stringify(validateDynamic.errors, null, 1));
  assert.is(staticDoc.certificatesResolvers['step-ca'].acme.caServer, 'https://172.16.100.11:9000/acme/acme/directory', 'the CT bootstrap_ca_url');
  assert.is(staticDoc.certificatesResolvers['step-ca'].acme.caServerName, 'ca.internal.example.org', 'the CA name to verify when reached by address');
  assert.equal(staticDoc.entryPoints.mesh.http.tls, { options: 'mesh-mtls@file' });
  assert.not.match(staticText, /clientCA/);
  for (const file of ['/etc/traefik/traefik.yml', '/etc/traefik/dynamic/dynamic_conf.yml', '/etc/traefik/certs/ca.pem']) {
    assert.is(fs.statSync(host.guestPath('102', file)).mode & 0o777, 0o644, file);
  }
  assert.is(guestRead('102', '/etc/traefik/acme.json'), '');
  assert.is(fs.statSync(host.guestPath('102', '/etc/traefik/acme.json')).mode & 0o777, 0o600, 'ACME store 0600');

  const calls = pctCalls();
  const at = (re: RegExp) => calls.findIndex((c) => re.test(c));
  const health = at(/^exec 102 -- step ca health --ca-url https:\/\/172\.16\.100\.11:9000 --root \/etc\/traefik\/certs\/ca\.pem$/);
  const bootstrap = at(new RegExp(`^exec 102 -- step ca bootstrap --ca-url https://172\\.16\\.100\\.11:9000 --fingerprint ${FINGERPRINT} --force$`));
  const restart = at(/^exec 102 -- systemctl restart traefik$/);
  assert.ok(health >= 0 && bootstrap > health && restart > bootstrap, calls.join('\n'));
  assert.ok(at(/^exec 102 -- systemctl enable traefik$/) >= 0);
  assert.ok(calls.findLastIndex((c) => c === 'exec 102 -- systemctl is-active --quiet traefik') > restart, 'checked active after the start');

  // A second run changes nothing; a dynamic-only change is pushed without a restart; a static change restarts.
  meshAfterRun();
  host.clearCalls();
  const again = run(SCRIPT_102, base, ['102']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(pushes(), []);
  assert.equal(changing().map(line), []);
  assert.match(again.stderr, /unchanged: nothing to do/);

  editManifests(base, ({ lxc }) => (lxc.lxc_configs['103'].traefik_service.port = 9443));
  host.clearCalls();
  const dynamicOnly = run(SCRIPT_102, base, ['102']);
  assert.is(dynamicOnly.code, 0, dynamicOnly.stderr);
  assert.equal(pushes().map((c) => c.argv[3]), ['/etc/traefik/dynamic/dynamic_conf.yml']);
  assert.not.ok(pctCalls().some((c) => /systemctl (restart|reload)/.test(c)), 'Traefik watches the dynamic file');
  assert.match(guestRead('102', '/etc/traefik/dynamic/dynamic_conf.yml') as string, /url: https:\/\/172\.16\.100\.11:9443/);

  editManifests(base, ({ hv }) => (hv.gateway.mesh_port = 9443));
  host.clearCalls();
  const staticChange = run(SCRIPT_102, base, ['102']);
  assert.is(staticChange.code, 0, staticChange.stderr);
  assert.equal(pushes().map((c) => c.argv[3]), ['/etc/traefik/traefik.yml']);
  assert.ok(pctCalls().includes('exec 102 -- systemctl restart traefik'));
  assert.match(guestRead('102', '/etc/traefik/traefik.yml') as string, /address: ":9443"/);
});

test('102: a template laid out like the bash toolkit\'s and no gateway section: installed with the step-ca resolver added, the API not insecure, log INFO, the CA backend over https', () => {
  meshCt();
  const base = freshBase(({ hv, lxc }) => {
    delete hv.gateway;
    delete lxc.lxc_configs['103'].traefik_service.scheme;
  });
  fs.mkdirSync(path.join(base, 'etc', 'traefik'), { recursive: true });
  fs.copyFileSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'compat', 'traefik.yml.template'), path.join(base, 'etc', 'traefik', 'traefik.yml.template'));
  caAnswers();
  const r = run(SCRIPT_102, base, ['102']);
  assert.is(r.code, 0, r.stderr);

  const staticDoc: Json = parse(guestRead('102', '/etc/traefik/traefik.yml') as string);
  const dynamicDoc: Json = parse(guestRead('102', '/etc/traefik/dynamic/dynamic_conf.yml') as string);
  assert.ok(validateStatic(structuredClone(staticDoc)), JSON.stringify(validateStatic.errors, null, 1));
  assert.ok(validateDynamic(structuredClone(dynamicDoc)), JSON.stringify(validateDynamic.errors, null, 1));
  assert.is(staticDoc.certificatesResolvers['step-ca'].acme.caServer, 'https://172.16.100.11:9000/acme/acme/directory');
  assert.is(staticDoc.certificatesResolvers['step-ca'].acme.storage, '/etc/traefik/acme.json');
  assert.equal(staticDoc.api, { dashboard: true, insecure: false });
  assert.is(staticDoc.log.level, 'INFO');
  assert.equal(staticDoc.entryPoints.mesh.http.tls, { options: 'mesh-mtls@file' });
  assert.equal(dynamicDoc.http.services['ca-service'].loadBalancer.servers, [{ url: 'https://172.16.100.11:9000' }]);
  assert.is(dynamicDoc.http.services['ca-service'].loadBalancer.serversTransport, 'internal-ca');
  assert.equal(dynamicDoc.http.serversTransports['internal-ca'].rootCAs, ['/etc/traefik/certs/ca.pem']);
  assert.is(guestRead('102', '/etc/traefik/certs/ca.pem'), ROOT_PEM, 'the root the transport names is the one installed');
  assert.is(fs.statSync(host.guestPath('102', '/etc/traefik/acme.json')).mode & 0o777, 0o600, 'ACME store for the added resolver');
  assert.match(r.stderr, /\[WARN\] [^\n]*api\.insecure true -> false/);
  assert.match(r.stderr, /\[WARN\] [^\n]*log\.level DEBUG -> INFO/);
});

test('102: --dry-run changes nothing in the CT or under the base directory', () => {
  meshCt();
  const base = freshBase();
  caAnswers();
  const r = run(SCRIPT_102, base, ['102', '--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(changing().map(line), []);
  assert.not.ok(fs.existsSync(path.join(base, 'etc', 'traefik')));
  assert.is(guestRead('102', '/etc/traefik/traefik.yml'), undefined);
  assert.match(r.stderr, /DRY-RUN: would run: pct exec 102 -- step ca bootstrap/);
});

test('102: a CA that never becomes ready fails within the timeout, before Traefik is configured', () => {
  meshCt();
  const base = freshBase();
  host.injectExec({ tool: 'pct', guest: 102, command: ['step', 'ca', 'health'], exit: 1, stderr: 'client GET https://172.16.100.11:9000/health failed: dial tcp 172.16.100.11:9000: connect: connection refused\n' });
  const r = run(SCRIPT_102, base, ['102', '--ca-timeout', '3']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /the CA at https:\/\/172\.16\.100\.11:9000 did not become ready within 3 s/, r.stderr);
  assert.match(r.stderr, /connection refused/);
  assert.ok(r.ms < 15_000, `bounded (${r.ms} ms)`);
  assert.ok(host.calls('pct').filter((c) => line(c).startsWith('exec 102 -- step ca health')).length >= 2, 'polled more than once');
  assert.is(guestRead('102', '/etc/traefik/traefik.yml'), undefined);
  assert.not.ok(pctCalls().some((c) => /systemctl restart/.test(c)));

  // No host copy and a CA container that has no root yet: bounded as well.
  meshCt('103');
  fs.rmSync(rootCaFile);
  const noRoot = run(SCRIPT_102, freshBase(), ['102', '--ca-timeout', '1']);
  assert.is(noRoot.code, 1, noRoot.stderr);
  assert.match(noRoot.stderr, /did not become ready within 1 s: cannot copy the root CA from CT 103/);
  assert.ok(noRoot.ms < 15_000, `bounded (${noRoot.ms} ms)`);

  // No host copy and no CA container: nothing to wait for.
  meshCt();
  fs.rmSync(rootCaFile);
  const noCa = run(SCRIPT_102, freshBase(), ['102']);
  assert.is(noCa.code, 1, noCa.stderr);
  assert.match(noCa.stderr, /no root CA copy and the CA container 103 does not exist/);
  assert.ok(noCa.ms < 15_000, `no wait (${noCa.ms} ms)`);
});

test('102: arguments', () => {
  meshCt();
  const base = freshBase();
  assert.match(run(SCRIPT_102, base, []).stderr, /missing CTID/);
  assert.is(run(SCRIPT_102, base, ['102', '--ca-timeout', 'soon']).code, 1);
  const wrong = run(SCRIPT_102, base, ['101']);
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /(CT 101 does not exist|CT 101 is not the Traefik container)/);
  assert.equal(changing(), []);
});

test.run();
