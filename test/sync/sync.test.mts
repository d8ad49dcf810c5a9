// `portainer-manager.sh sync all` (and `phoenix sync`) end to end on the
// simulated host with the example manifests: CTs 101/102/103 and VMs
// 1001/1002 running (docker emulated in the VMs), the Portainer API stand-in
// on 127.0.0.1, and the ported scripts sync calls: firewall, DNS,
// swarm-manager, the gateway generators. The guests here are made directly
// with pct/qm, so CT 103 holds no CA: the two scripts that need one (the
// host trust store and the certificate manager) are pinned to small
// idempotent stand-ins written below (PHOENIX_USE_LEGACY). The tests are about
// sync itself: its stages, what it deploys, its idempotency, dry-run,
// failures, the lock and where the admin password may never appear.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createSimHost, DEFAULT_TEMPLATE } from '../simhost/index.mts';
import { tmpDir, writeExecutable } from '../helpers/tmp.mts';
import { isMutating } from '../helpers/calls.mts';
import type { RequestLogEntry, StandinState } from '../portainer-standin/server.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

const manager = path.join(PROJECT_ROOT, 'scripts', 'managers', 'portainer-manager.mjs');
const cli = path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs');
const host = createSimHost();
const work = tmpDir();
const base = path.join(work, 'base');
const legacy = path.join(work, 'legacy');
const hostRoot = path.join(host.stateDir, 'hostfs');
const passwordFile = path.join(hostRoot, 'etc', 'phoenix', 'secrets', 'portainer_admin_password');

// A base directory of our own: generated files must not land in the repository's etc/.
fs.cpSync(path.join(PROJECT_ROOT, 'etc'), path.join(base, 'etc'), { recursive: true, filter: (src) => !/etc\/(traefik|nginx)\/.*\.(yml|conf)$|sites-available/.test(src) });

const STANDIN_HEAD = `#!/usr/bin/env bash
set -euo pipefail
st="\${PHOENIX_SIM_STATE:?}/standins"; mkdir -p "$st"
log() { printf '%s [INFO] %s: %s\\n' "$(date '+%F %T')" "$(basename "$0")" "$*" >&2; }
`;
// certificate-renewal-manager: issues (self-signs) the manifest's missing certificates.
writeExecutable(legacy, 'bin/managers/certificate-renewal-manager.sh', `${STANDIN_HEAD}
root="\${PHOENIX_HOST_ROOT:-/}"; n=0
while IFS=$'\\t' read -r cn crt key; do
  if [ ! -f "$root/$crt" ] || [ ! -f "$root/$key" ]; then
    mkdir -p "$(dirname "$root/$crt")" "$(dirname "$root/$key")"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$cn" -keyout "$root/$key" -out "$root/$crt" 2>/dev/null
    n=$((n+1))
  fi
done < <(jq -r '.[] | [.common_name, .cert_path, .key_path] | @tsv' "\${CERTIFICATE_MANIFEST_FILE:?}")
if [ "$n" -gt 0 ]; then log "issued $n certificates"; else log "all certificates valid, unchanged"; fi
`);
writeExecutable(legacy, 'bin/hypervisor_setup/hypervisor_feature_install_trusted_ca.sh', `${STANDIN_HEAD}
f="\${PHOENIX_HOST_ROOT:-/}/usr/local/share/ca-certificates/phoenix_internal_root_ca.crt"
if [ -f "$f" ]; then log "root CA already trusted, unchanged"; else mkdir -p "$(dirname "$f")"; echo stand-in > "$f"; log "root CA installed"; fi
`);
const pinned = ['managers/certificate-renewal-manager.sh', 'hypervisor_setup/hypervisor_feature_install_trusted_ca.sh'];

/**
 * The Portainer stand-in as its own process (the tests block in spawnSync,
 * which would starve a server in this process), with its state and request
 * log in files the tests read.
 */
interface ProcessStandin {
  url: string;
  readonly state: StandinState;
  readonly requests: RequestLogEntry[];
  close(): Promise<void>;
}

let standinCount = 0;
async function startStandin(): Promise<ProcessStandin> {
  const dir = path.join(work, `standin-${++standinCount}`);
  fs.mkdirSync(dir);
  const stateFile = path.join(dir, 'state.json');
  const logFile = path.join(dir, 'requests.jsonl');
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'test', 'portainer-standin', 'server.mjs'), '--port', '0', '--state', stateFile, '--log', logFile, '--max-lifetime', '600'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^listening (\S+)\n/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.on('close', () => reject(new Error(`the Portainer stand-in ended early: ${out}`)));
  });
  return {
    url,
    get state() {
      return fs.existsSync(stateFile) ? (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as StandinState) : { admin: null, endpoints: [], stacks: [], nextId: 1 };
    },
    get requests() {
      return fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as RequestLogEntry) : [];
    },
    close: async () => {
      child.kill('SIGTERM');
      await closed;
    },
  };
}

let standin: ProcessStandin;
const env: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: base,
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
  PHOENIX_LEGACY_DIR: legacy,
  PHOENIX_USE_LEGACY: pinned.join(' '),
  PHOENIX_POLL_INTERVAL_MS: '50',
  PHOENIX_PORTAINER_RETRIES: '3',
  PHOENIX_PORTAINER_BACKOFF_MS: '50',
  NO_SPINNER: '1',
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_RECORD', 'PHOENIX_LOCK_TOKEN', 'PHOENIX_RESET_PORTAINER']) delete env[key];

interface Recorded {
  script: string;
  cmd: string;
  args: string[];
  mutating: boolean;
  skipped: boolean;
}

/** Everything the runs printed and recorded, for the password check. */
const seen: string[] = [];

function sync(args: string[], extra: Record<string, string> = {}) {
  const record = path.join(work, `record-${Date.now()}-${Math.random().toString(36).slice(2)}.jsonl`);
  const r = spawnSync(process.execPath, [manager, ...args], { env: { ...env, PHOENIX_PORTAINER_URL: standin.url, PHOENIX_RECORD: record, ...extra }, encoding: 'utf8' });
  const commands = fs.existsSync(record) ? fs.readFileSync(record, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Recorded) : [];
  seen.push(r.stdout, r.stderr, fs.existsSync(record) ? fs.readFileSync(record, 'utf8') : '');
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, commands, recordText: fs.existsSync(record) ? fs.readFileSync(record, 'utf8') : '' };
}

function resultOf(stdout: string, stage: string): string | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(`${stage}  `) || l.startsWith(`${stage} `));
  return line?.slice(stage.length).trim().split(/\s{2,}/)[0];
}

async function buildGuests(): Promise<void> {
  host.reset();
  for (const id of ['103', '101', '102']) {
    assert.is(host.run('pct', ['create', id, `local:vztmpl/${DEFAULT_TEMPLATE}`, '--hostname', `ct${id}`, '--rootfs', 'local-lvm:4']).code, 0);
    assert.is(host.run('pct', ['start', id]).code, 0);
  }
  for (const [id, name] of [['1001', 'portainer'], ['1002', 'worker-1']] as const) {
    assert.is(host.run('qm', ['create', id, '--name', name, '--agent', 'enabled=1']).code, 0);
    assert.is(host.run('qm', ['start', id]).code, 0);
  }
  for (const dir of ['etc/traefik/traefik.yml', 'etc/traefik/dynamic_conf.yml', 'etc/nginx']) fs.rmSync(path.join(base, dir), { recursive: true, force: true });
  await standin?.close();
  standin = await startStandin();
  host.clearCalls();
}

const guestFile = (id: string, p: string) => fs.readFileSync(host.guestPath(id, p), 'utf8');

test.before(async () => {
  await buildGuests();
});

test.after(async () => {
  await standin?.close();
});

test('sync all brings the simulated host to the manifests: every stage, Portainer set up through its API', async () => {
  const r = sync(['sync', 'all']);
  assert.is(r.code, 0, r.stderr.split('\n').filter((l) => /ERROR|WARN/.test(l)).join('\n'));
  for (const stage of ['stack files', 'trusted CA', 'DNS', 'firewall', 'swarm', 'certificates', 'Portainer', 'Traefik', 'Nginx', 'application stacks']) {
    assert.is(resultOf(r.stdout, stage), 'changed', `${stage} changed on the first run`);
  }
  // Stack templates mirrored to the export the manager mounts.
  assert.ok(fs.existsSync(path.join(hostRoot, 'quickOS/portainer_stacks/whoami_service/docker-compose.yml')));
  // Traefik (CT 102) and the gateway (CT 101) got the generated files.
  assert.is(guestFile('102', '/etc/traefik/dynamic/dynamic_conf.yml'), fs.readFileSync(path.join(base, 'etc/traefik/dynamic_conf.yml'), 'utf8'));
  assert.is(guestFile('102', '/etc/traefik/traefik.yml'), fs.readFileSync(path.join(base, 'etc/traefik/traefik.yml'), 'utf8'));
  assert.is(guestFile('101', '/etc/nginx/stream.d/stream-gateway.conf'), fs.readFileSync(path.join(base, 'etc/nginx/stream.d/stream-gateway.conf'), 'utf8'));
  assert.is(guestFile('101', '/etc/nginx/sites-enabled/gateway'), fs.readFileSync(path.join(base, 'etc/nginx/sites-available/gateway'), 'utf8'));
  assert.is(fs.readlinkSync(host.guestPath('101', '/etc/nginx/sites-enabled/gateway')), '../sites-available/gateway', 'the enabled site is a link, as the bash left it');
  const execs = host.calls('pct').filter((c) => c.argv[0] === 'exec').map((c) => c.argv.join(' '));
  assert.ok(execs.includes('exec 101 -- nginx -t'), 'nginx -t in the gateway before the reload');
  assert.ok(execs.indexOf('exec 101 -- nginx -t') < execs.indexOf('exec 101 -- systemctl reload nginx'));
  assert.ok(execs.includes('exec 102 -- systemctl restart traefik'), 'a new static file restarts Traefik');
  // The swarm, its admin secret (on stdin, not in an argument) and the Portainer stack, deployed once.
  const docker = host.calls('qm').filter((c) => c.argv[0] === 'guest' && c.argv[1] === 'exec').map((c) => c.argv.slice(c.argv.indexOf('--') + 1));
  assert.ok(docker.some((a) => a.join(' ').startsWith('docker swarm init')), 'swarm initialised');
  assert.ok(docker.some((a) => a.join(' ').startsWith('docker swarm join')), 'worker joined');
  assert.ok(docker.some((a) => a.join(' ') === 'docker secret create portainer_admin_password -'), 'admin secret created from stdin');
  assert.ok(docker.some((a) => a.join(' ') === 'docker run --detach --name portainer_agent --restart always --publish 9001:9001 --volume /var/run/docker.sock:/var/run/docker.sock --volume /var/lib/docker/volumes:/var/lib/docker/volumes portainer/agent:2.21.5'), 'the agent runs on the worker');
  const deploys = docker.filter((a) => a[1] === 'stack' && a[2] === 'deploy').map((a) => a.at(-1));
  assert.equal(deploys, ['production_portainer_service'], 'the Portainer stack once (the bash deployed it twice); applications went through Portainer');
  // Portainer: admin once, the swarm and the agent environments, the application stack.
  assert.ok(standin.state.admin);
  assert.equal(standin.state.endpoints.map((e) => [e.Name, e.Type, e.URL]), [
    ['portainer', 1, 'unix:///var/run/docker.sock'],
    ['worker-1', 2, 'tcp://worker-1-agent.internal.example.org:9001'],
  ]);
  assert.equal(standin.state.stacks.map((s) => s.Name), ['production_whoami_service']);
  assert.match(standin.state.stacks[0]!.StackFileContent, /traefik\.http\.routers\.whoami\.rule/);
  // The admin password file: created, mode 600, its directory 700.
  assert.is(fs.statSync(passwordFile).mode & 0o777, 0o600);
  assert.is(fs.statSync(path.dirname(passwordFile)).mode & 0o777, 0o700);
  assert.match(r.stderr, /created the Portainer admin password in \/etc\/phoenix\/secrets\/portainer_admin_password/);
});

test('a second sync all on the unchanged host changes nothing and says so', () => {
  host.clearCalls();
  const before = standin.requests.length;
  const r = sync(['sync', 'all']);
  assert.is(r.code, 0, r.stderr);
  for (const stage of ['stack files', 'trusted CA', 'DNS', 'firewall', 'swarm', 'certificates', 'Portainer', 'Traefik', 'Nginx', 'application stacks']) {
    assert.is(resultOf(r.stdout, stage), 'unchanged', `${stage}`);
  }
  assert.match(r.stderr, /sync complete: no change/);
  const changes = r.commands.filter((c) => c.mutating && !c.skipped).map((c) => `${c.script}: ${c.cmd} ${c.args.join(' ')}`);
  assert.equal(changes, [], 'no mutating command');
  const writes = standin.requests.slice(before).filter((q) => q.method !== 'GET' && q.path !== '/api/auth');
  assert.equal(writes, [], 'nothing changed in Portainer');
});

test('the admin password never reaches a log line, a recorded command, an argument or calls.jsonl', () => {
  const password = fs.readFileSync(passwordFile, 'utf8').trim();
  assert.ok(password.length >= 12);
  for (const [what, text] of [
    ['the output and recorded plans of the runs', seen.join('\n')],
    ['the main log', fs.readFileSync(env.MAIN_LOG_FILE!, 'utf8')],
    ['calls.jsonl', fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8')],
    ['the stand-in state', JSON.stringify(standin.state)],
  ] as const) {
    assert.ok(text.length > 0, what);
    assert.not.ok(text.includes(password), `password in ${what}`);
  }
  assert.not.ok(host.calls().some((c) => c.argv.some((a) => a.includes(password))), 'password in an argument');
});

test('--dry-run prints the whole plan and changes nothing (no mutating call, no file, no Portainer write)', async () => {
  await buildGuests();
  const r = sync(['--dry-run', 'sync', 'all']);
  assert.is(r.code, 0, r.stderr);
  // Every call the simulator counts as a change must be one the runner ran as
  // read-only: the docker and file queries inside guests the plan is computed from.
  const readOnly = new Set(r.commands.filter((c) => !c.mutating).map((c) => `${c.cmd} ${c.args.join(' ')}`));
  const changing = host.calls().filter(isMutating).map((c) => `${c.tool} ${c.argv.join(' ')}`).filter((c) => !readOnly.has(c));
  assert.equal(changing, []);
  assert.ok(r.commands.some((c) => c.skipped && c.mutating), 'the plan names the commands it would run');
  assert.match(r.stderr, /sync plan \(dry run: nothing will be changed\)/);
  for (const n of ['1. stack files', '5. swarm', '7. Portainer', '10. application stacks']) assert.ok(r.stderr.includes(n), n);
  assert.match(r.stderr, /7\. Portainer: admin password from \/etc\/phoenix\/secrets\/portainer_admin_password \(created if missing\)/);
  assert.match(r.stdout, /swarm\s+would change/);
  assert.match(r.stdout, /Portainer\s+skipped\s+\S+ s\s+runs once 'swarm' has made its changes, which a dry run does not/);
  assert.match(r.stderr, /dry run finished: nothing was changed/);
  assert.not.ok(fs.existsSync(passwordFile), 'no password file');
  assert.not.ok(fs.existsSync(path.join(hostRoot, 'quickOS/portainer_stacks')), 'no stack files');
  assert.not.ok(fs.existsSync(path.join(base, 'etc/traefik/dynamic_conf.yml')), 'nothing generated');
  assert.is(standin.state.admin, null);
  assert.not.ok(fs.existsSync(path.join(hostRoot, 'quickOS/lxc-persistent-data/102/certs')), 'legacy scripts are printed, not run');
  assert.not.ok(fs.existsSync(env.PHOENIX_LOCK_FILE!), 'a dry-run takes no lock');
});

test('a failing stage stops what depends on it, is reported with its command, and sets the exit status', async () => {
  await buildGuests();
  host.injectExec({ tool: 'qm', guest: '1001', command: ['docker', 'swarm', 'init'], exit: 1, stderr: 'Error response from daemon: could not choose an IP address to advertise\n' });
  const r = sync(['sync', 'all']);
  assert.ok(r.code !== 0, 'non-zero exit');
  assert.is(resultOf(r.stdout, 'swarm'), 'failed');
  assert.match(r.stdout, /could not choose an IP address to advertise.*\[managers\/swarm-manager\.sh init\]/);
  assert.is(resultOf(r.stdout, 'Portainer'), 'skipped');
  assert.is(resultOf(r.stdout, 'application stacks'), 'skipped');
  assert.match(r.stdout, /Portainer\s+skipped\s+\S+ s\s+'swarm' failed/);
  // Independent stages still ran.
  assert.is(resultOf(r.stdout, 'Traefik'), 'changed');
  assert.is(standin.state.admin, null, 'Portainer was not touched');
  assert.match(r.stderr, /sync failed at 'swarm' \(managers\/swarm-manager\.sh init\)/);
});

test('a push into the Traefik CT that fails: Traefik failed, Nginx (after it) skipped; the next run converges', async () => {
  await buildGuests();
  host.injectFailure({ tool: 'pct', argv: ['push', '102'], times: 1, exit: 1, stderr: 'failed to open /etc/traefik/.traefik.yml.phoenix-new: Input/output error\n' });
  const r = sync(['sync', 'all']);
  assert.is(r.code, 1);
  assert.is(resultOf(r.stdout, 'Traefik'), 'failed');
  assert.match(r.stdout, /\[pct push 102 \S+ \/etc\/traefik\/\.traefik\.yml\.phoenix-new --perms 0644\]/);
  assert.is(resultOf(r.stdout, 'Nginx'), 'skipped');
  assert.not.ok(fs.existsSync(host.guestPath('102', '/etc/traefik/traefik.yml')), 'nothing half-written');
  const again = sync(['sync', 'all']);
  assert.is(again.code, 0, again.stderr);
  assert.is(resultOf(again.stdout, 'Traefik'), 'changed');
  assert.is(resultOf(again.stdout, 'Nginx'), 'changed');
  assert.is(guestFile('102', '/etc/traefik/traefik.yml'), fs.readFileSync(path.join(base, 'etc/traefik/traefik.yml'), 'utf8'));
});

test('nginx -t failing in the gateway: the previous files are put back, nginx is not reloaded', async () => {
  await buildGuests();
  const first = sync(['sync', 'all']);
  assert.is(first.code, 0, first.stderr);
  const before = guestFile('101', '/etc/nginx/nginx.conf');
  // Change the manifests so the gateway files differ, and make nginx -t refuse them.
  const hvFile = path.join(base, 'etc', 'phoenix_hypervisor_config.json');
  const original = fs.readFileSync(hvFile, 'utf8');
  const hv = JSON.parse(original);
  hv.gateway.passthrough_snis = ['whoami.internal.example.org', 'other.internal.example.org'];
  fs.writeFileSync(hvFile, JSON.stringify(hv, null, 4));
  host.injectExec({ tool: 'pct', guest: '101', command: ['nginx', '-t'], exit: 1, stderr: 'nginx: [emerg] unknown directive "bogus"\nnginx: configuration file /etc/nginx/nginx.conf test failed\n', times: 1 });
  host.clearCalls();
  try {
    const r = sync(['sync', 'all']);
    assert.is(r.code, 1);
    assert.is(resultOf(r.stdout, 'Nginx'), 'failed');
    assert.match(r.stdout, /nginx rejected the new configuration, the previous files were put back: nginx: \[emerg\] unknown directive "bogus"/);
    assert.is(guestFile('101', '/etc/nginx/nginx.conf'), before);
    assert.not.ok(host.calls('pct').some((c) => c.argv.join(' ') === 'exec 101 -- systemctl reload nginx'));
  } finally {
    fs.writeFileSync(hvFile, original);
  }
});

test('--reset-portainer (through phoenix sync) removes the stack and volume under their real names, then redeploys', async () => {
  await buildGuests();
  assert.is(sync(['sync', 'all']).code, 0);
  host.clearCalls();
  const r = spawnSync(process.execPath, [cli, 'sync', 'all', '--reset-portainer'], { env: { ...env, PHOENIX_PORTAINER_URL: standin.url }, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const docker = host.calls('qm').filter((c) => c.argv[0] === 'guest' && c.argv[1] === 'exec').map((c) => c.argv.slice(c.argv.indexOf('--') + 1).join(' '));
  const order = ['docker stack rm production_portainer_service', 'docker volume rm --force production_portainer_service_portainer_data', 'docker secret rm portainer_admin_password', 'docker secret create portainer_admin_password -'];
  const at = order.map((cmd) => docker.indexOf(cmd));
  assert.ok(at.every((i) => i >= 0), `all of ${order.join('; ')} in ${docker.join('; ')}`);
  assert.equal([...at].sort((x, y) => x - y), at, 'in that order');
  assert.ok(docker.slice(at[3]).some((cmd) => cmd.startsWith('docker stack deploy') && cmd.endsWith('production_portainer_service')), 'redeployed');
  assert.match(r.stdout, /Portainer\s+changed/);
});

test('sync stack <name> to <vmid> deploys that one stack (dead code in the bash); bad targets exit 1', async () => {
  await buildGuests();
  const r = sync(['sync', 'stack', 'whoami_service', 'to', '1002']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(standin.state.stacks.map((s) => s.Name), ['production_whoami_service']);
  assert.not.ok(/^Traefik /m.test(r.stdout), 'only the stages a stack needs');
  for (const args of [['sync', 'stack', 'nope', 'to', '1002'], ['sync', 'stack', 'whoami_service', 'to', '4242'], ['sync', 'stack', 'whoami_service'], ['sync', '1002'], ['deploy', 'all'], []]) {
    const bad = sync(args);
    assert.is(bad.code, 1, args.join(' '));
  }
  assert.match(sync(['sync', '1002']).stderr, /Invalid target for 'sync'/);
  assert.match(sync(['frobnicate']).stderr, /Invalid action 'frobnicate' for portainer-manager\. Valid actions: sync/);
  const help = sync(['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /stack <name> to <vmid>/);
});

test('two runs at once: the second exits 75 (PHOENIX_LOCK_WAIT=0) or waits for the first (PHOENIX_LOCK_WAIT set)', async () => {
  await buildGuests();
  host.setLatency({ pct: 150 });
  const start = () => {
    const child = spawn(process.execPath, [manager, 'sync', 'all'], { env: { ...env, PHOENIX_PORTAINER_URL: standin.url }, stdio: 'ignore' });
    return new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  };
  try {
    const first = start();
    for (let i = 0; i < 100 && !fs.existsSync(env.PHOENIX_LOCK_FILE!); i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(fs.existsSync(env.PHOENIX_LOCK_FILE!), 'the first run holds the lock');
    const refused = sync(['sync', 'all'], { PHOENIX_LOCK_WAIT: '0' });
    assert.is(refused.code, 75);
    assert.match(refused.stderr, /another Phoenix run holds/);
    const waiting = new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [manager, 'sync', 'all'], { env: { ...env, PHOENIX_PORTAINER_URL: standin.url, PHOENIX_LOCK_WAIT: '120' } });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
    assert.is(await first, 0);
    const second = await waiting;
    assert.is(second.code, 0, second.stderr);
    assert.match(second.stderr, /waiting for the host lock/);
    assert.match(second.stderr, /sync complete: no change/);
  } finally {
    host.setLatency({});
  }
});

test('a run killed halfway leaves nothing half-written; the next run takes the stale lock over and converges', async () => {
  await buildGuests();
  host.setLatency({ pct: 150 });
  const child = spawn(process.execPath, [manager, 'sync', 'all'], { env: { ...env, PHOENIX_PORTAINER_URL: standin.url }, stdio: 'ignore' });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  try {
    // Kill it in the middle of installing Traefik's files.
    for (let i = 0; i < 600 && !host.calls('pct').some((c) => c.argv[0] === 'push' && c.argv[1] === '102'); i++) await new Promise((res) => setTimeout(res, 50));
    child.kill('SIGKILL');
    await closed;
  } finally {
    host.setLatency({});
  }
  const target = host.guestPath('102', '/etc/traefik/traefik.yml');
  const generated = fs.readFileSync(path.join(base, 'etc/traefik/traefik.yml'), 'utf8');
  if (fs.existsSync(target)) assert.is(fs.readFileSync(target, 'utf8'), generated, 'the old file or the whole new one, never part of it');
  const r = sync(['sync', 'all']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /taking over the stale lock/);
  assert.is(guestFile('102', '/etc/traefik/traefik.yml'), generated);
  assert.is(guestFile('102', '/etc/traefik/dynamic/dynamic_conf.yml'), fs.readFileSync(path.join(base, 'etc/traefik/dynamic_conf.yml'), 'utf8'));
  assert.is(sync(['sync', 'all']).stderr.includes('sync complete: no change'), true, 'and then stays put');
});

test('phoenix sync all runs the port under the CLI lock; unknown sync targets exit 1', () => {
  const r = spawnSync(process.execPath, [cli, 'sync', 'all'], { env: { ...env, PHOENIX_PORTAINER_URL: standin.url }, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /application stacks\s+unchanged/);
  const bad = spawnSync(process.execPath, [cli, 'sync', 'everything'], { env, encoding: 'utf8' });
  assert.is(bad.status, 1);
});

test.run();
