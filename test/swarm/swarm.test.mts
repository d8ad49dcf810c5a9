// swarm-manager end to end on the simulated Proxmox host: VMs 1001
// (manager) and 1002 (worker) of the example manifests, running with their
// guest agents, docker emulated inside them (simhost/programs/docker.mts).
// Init, join and labels; re-runs that change nothing; stack rendering
// (golden) and deploys skipped when nothing changed; rm, status, dry-run,
// the host lock; join tokens kept out of argv and logs; a failing docker
// command named in the error.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { tmpDir } from '../helpers/tmp.mts';
import { transcript } from '../helpers/calls.mts';
import { assertGolden } from '../helpers/golden.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';
import { acquireHostLock } from '../../lib/core/lock.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { renderStack, DIGEST_LABEL } from '../../lib/stacks/render.mts';
import { interpolate } from '../../lib/stacks/interpolate.mts';
import { checkTraefikLabels } from '../../lib/stacks/traefik-labels.mts';
import { clearSecrets, redact } from '../../lib/core/redact.mts';

const script = path.join(PROJECT_ROOT, 'scripts', 'managers', 'swarm-manager.mjs');
const host = createSimHost();
const work = tmpDir();
const hostfs = path.join(host.stateDir, 'hostfs');
const logFile = path.join(work, 'phoenix.log');
const recordFile = path.join(work, 'record.jsonl');

const baseEnv: Record<string, string> = {
  ...host.env,
  PHOENIX_BASE_DIR: PROJECT_ROOT,
  MAIN_LOG_FILE: logFile,
  PHOENIX_LOCK_FILE: path.join(work, 'run', 'phoenix.lock'),
  PHOENIX_POLL_INTERVAL_MS: '50',
  PHOENIX_RECORD: recordFile,
};
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_DEBUG', 'PHOENIX_LOCK_TOKEN', 'PHOENIX_HOST_ROOT']) delete baseEnv[key];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function swarm(args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [script, ...args], { env: { ...baseEnv, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function expectOk(r: Run): Run {
  assert.is(r.code, 0, r.stderr);
  return r;
}

/** A command inside a VM, as the guest agent reports it. */
function guest(vmid: string, argv: string[], input?: string): { exit: number; out: string; err: string } {
  const r = host.run('qm', ['guest', 'exec', vmid, ...(input === undefined ? [] : ['--pass-stdin', '1']), '--', ...argv], input === undefined ? {} : { input });
  assert.is(r.code, 0, r.stderr);
  const reply = JSON.parse(r.stdout) as { exitcode: number; 'out-data'?: string; 'err-data'?: string };
  return { exit: reply.exitcode, out: reply['out-data'] ?? '', err: reply['err-data'] ?? '' };
}

interface DockerJson {
  swarms: Record<string, { tokens: { worker: string; manager: string }; nodes: Record<string, { hostname: string; vmid: string; role: string; status: string; labels: Record<string, string> }>; services: Record<string, { labels: Record<string, string>; command: string[] }> }>;
}

function dockerState(): DockerJson {
  return JSON.parse(fs.readFileSync(path.join(host.stateDir, 'docker.json'), 'utf8')) as DockerJson;
}

const dockerCalls = (calls: readonly CallRecord[], ...words: string[]) =>
  calls.filter((c) => c.tool === 'qm' && c.argv[0] === 'guest' && c.argv[1] === 'exec' && words.every((w, i) => c.argv[c.argv.indexOf('--') + 1 + i] === w));

function freshVms(start = true): void {
  host.reset();
  fs.rmSync(path.join(work, 'run'), { recursive: true, force: true });
  fs.rmSync(logFile, { force: true });
  fs.rmSync(recordFile, { force: true });
  fs.rmSync(path.join(host.stateDir, 'docker.json'), { force: true });
  for (const [vmid, name, ip] of [
    ['1001', 'portainer', '10.0.0.21/24'],
    ['1002', 'worker-1', '10.0.0.22/24'],
  ] as const) {
    const created = host.run('qm', ['create', vmid, '--name', name, '--agent', '1', '--memory', '2048', '--ipconfig0', `ip=${ip},gw=10.0.0.1`]);
    assert.is(created.code, 0, created.stderr);
    if (start) assert.is(host.run('qm', ['start', vmid]).code, 0);
  }
  host.clearCalls();
}

/** The swarm of the example manifests, built once and copied for the tests that start from it. */
const withSwarm = path.join(work, 'state-with-swarm');
function swarmReady(): void {
  if (fs.existsSync(withSwarm)) {
    for (const entry of fs.readdirSync(host.stateDir)) fs.rmSync(path.join(host.stateDir, entry), { recursive: true, force: true });
    fs.cpSync(withSwarm, host.stateDir, { recursive: true, verbatimSymlinks: true });
    fs.rmSync(path.join(work, 'run'), { recursive: true, force: true });
    host.clearCalls();
    return;
  }
  freshVms();
  expectOk(swarm(['init']));
  expectOk(swarm(['join', '1002']));
  fs.cpSync(host.stateDir, withSwarm, { recursive: true, verbatimSymlinks: true });
  host.clearCalls();
}

// ---------------------------------------------------------------- arguments

test('arguments: --help, invalid action, usage errors (exit 1, the bash messages)', () => {
  const help = swarm(['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: swarm-manager\.sh <action>/);
  const none = swarm([]);
  assert.is(none.code, 1);
  assert.match(none.stderr, /Invalid action '' for swarm-manager\. Valid actions: init, join, deploy, rm, status/);
  const bad = swarm(['destroy']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /Invalid action 'destroy'/);
  const join = swarm(['join']);
  assert.is(join.code, 1);
  assert.match(join.stderr, /Usage: phoenix swarm join <vmid>/);
  const deploy = swarm(['deploy', 'whoami_service']);
  assert.is(deploy.code, 1);
  assert.match(deploy.stderr, /Usage: phoenix swarm deploy <stack_name> --env <environment_name>/);
  const rm = swarm(['rm', '--env', 'production']);
  assert.is(rm.code, 1);
  assert.match(rm.stderr, /Usage: phoenix swarm rm/);
});

test('init on a stopped manager VM fails before any docker command', () => {
  freshVms(false);
  const r = swarm(['init']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /VM 1001 is not running/);
  assert.is(dockerCalls(host.calls()).length, 0);
});

// ---------------------------------------------------------------- init, join, labels

test('init + join + labels (golden transcript); node IDs, roles and labels in the swarm', () => {
  freshVms();
  const init = swarm(['init']);
  assert.is(init.code, 0, init.stderr);
  const join = swarm(['join', '1002']);
  assert.is(join.code, 0, join.stderr);
  assertGolden('swarm-init-join.txt', transcript(host.calls()));
  const [cluster] = Object.values(dockerState().swarms);
  assert.ok(cluster);
  const nodes = Object.values(cluster.nodes).map((n) => ({ hostname: n.hostname, vmid: n.vmid, role: n.role, status: n.status, labels: n.labels }));
  assert.equal(nodes, [
    { hostname: 'portainer', vmid: '1001', role: 'manager', status: 'ready', labels: { role: 'management' } },
    { hostname: 'worker-1', vmid: '1002', role: 'worker', status: 'ready', labels: { role: 'apps', gpu: 'false' } },
  ]);
});

test('second init and join change nothing and say so', () => {
  swarmReady();
  const init = swarm(['init']);
  assert.is(init.code, 0, init.stderr);
  assert.match(init.stderr, /already active on VM 1001 .*nothing to do/);
  const join = swarm(['join', '1002']);
  assert.is(join.code, 0, join.stderr);
  assert.match(join.stderr, /VM 1002 is already in the swarm .*nothing to do/);
  assert.match(join.stderr, /Node labels of VM 1002 already set/);
  const calls = host.calls();
  for (const words of [['docker', 'swarm', 'init'], ['docker', 'swarm', 'leave'], ['xargs'], ['docker', 'node', 'update'], ['docker', 'swarm', 'join-token']]) {
    assert.is(dockerCalls(calls, ...words).length, 0, `no ${words.join(' ')}`);
  }
});

test('join tokens never reach an argument vector, the record or the log; they reach the worker on stdin', () => {
  swarmReady();
  // Make the worker rejoin, so a token is fetched and used in this test too.
  assert.is(guest('1002', ['docker', 'swarm', 'leave']).exit, 0);
  const r = swarm(['join', '1002']);
  assert.is(r.code, 0, r.stderr);
  const { tokens } = Object.values(dockerState().swarms)[0]!;
  const joinCall = dockerCalls(host.calls(), 'xargs');
  assert.is(joinCall.length, 1);
  assert.ok((joinCall[0]!.stdin_bytes ?? 0) > 0, 'the token went on stdin');
  const places = {
    'calls.jsonl': fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8'),
    'log file': fs.readFileSync(logFile, 'utf8'),
    'PHOENIX_RECORD': fs.readFileSync(recordFile, 'utf8'),
    stderr: r.stderr,
    stdout: r.stdout,
  };
  for (const [where, text] of Object.entries(places)) {
    for (const token of [tokens.worker, tokens.manager]) assert.not.ok(text.includes(token), `token in ${where}`);
    assert.not.match(text, /SWMTKN-1-[a-z0-9]{10}/, `no token shape in ${where}`);
  }
});

test('a rejoin removes the stale Down entry of the same host (no churn)', () => {
  swarmReady();
  assert.is(guest('1002', ['docker', 'swarm', 'leave']).exit, 0);
  const down = guest('1001', ['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}']);
  assert.match(down.out, /worker-1 Down/);
  const r = swarm(['join', '1002']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /Removing 1 stale node entry of worker-1/);
  const nodes = guest('1001', ['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}']).out.trim().split('\n').sort();
  assert.equal(nodes, ['portainer Ready', 'worker-1 Ready']);
  const labels = guest('1001', ['docker', 'node', 'inspect', '--format', '{{json .Spec.Labels}}', 'worker-1']).out.trim();
  assert.equal(JSON.parse(labels), { role: 'apps', gpu: 'false' });
});

test('init refuses a manager VM that is a worker of another swarm, rather than forcing a new cluster', () => {
  freshVms();
  assert.is(guest('1002', ['docker', 'swarm', 'init', '--advertise-addr', '10.0.0.22']).exit, 0);
  const token = guest('1002', ['docker', 'swarm', 'join-token', '-q', 'worker']).out.trim();
  assert.is(guest('1001', ['docker', 'swarm', 'join', '--token', token, '10.0.0.22:2377']).exit, 0);
  host.clearCalls();
  const r = swarm(['init']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /VM 1001 is a worker of another swarm \(managers: 10\.0\.0\.22:2377\)/);
  assert.is(dockerCalls(host.calls(), 'docker', 'swarm', 'init').length, 0);
  assert.is(dockerCalls(host.calls(), 'docker', 'swarm', 'leave').length, 0);
});

test('join refuses a VM without swarm_role, an unknown VM, and the manager itself', () => {
  swarmReady();
  const template = swarm(['join', '9000']);
  assert.is(template.code, 1);
  assert.match(template.stderr, /VM 9000 does not have a 'swarm_role' defined/);
  const unknown = swarm(['join', '4242']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /VM 4242 not found in configuration/);
  const self = swarm(['join', '1001']);
  assert.is(self.code, 1);
  assert.match(self.stderr, /first manager/);
});

// ---------------------------------------------------------------- stacks

const renderedFile = (stack: string, env: string) => path.join(hostfs, 'quickOS', 'portainer_stacks', stack, `docker-compose.${env}.rendered.yml`);

test('deploy renders the expected compose (golden), creates traefik-public, runs the service on the labelled worker', () => {
  swarmReady();
  const r = swarm(['deploy', 'whoami_service', '--env', 'production']);
  assert.is(r.code, 0, r.stderr);
  const file = renderedFile('whoami_service', 'production');
  assertGolden('swarm-whoami_service.production.yml', fs.readFileSync(file, 'utf8'));
  assert.is(fs.statSync(file).mode & 0o777, 0o644);
  assert.is(dockerCalls(host.calls(), 'docker', 'network', 'create').length, 1);
  const deployCall = dockerCalls(host.calls(), 'docker', 'stack', 'deploy');
  assert.is(deployCall.length, 1);
  assert.ok(deployCall[0]!.argv.includes('-'), 'the compose file went on stdin');
  const services = guest('1001', ['docker', 'stack', 'services', 'production_whoami_service', '--format', '{{.Name}} {{.Replicas}}']);
  assert.is(services.out, 'production_whoami_service_whoami 1/1\n');
  const ps = guest('1002', ['docker', 'ps', '--format', '{{.Names}}']);
  assert.match(ps.out, /^production_whoami_service_whoami\.1\./);
});

test('redeploying an unchanged stack does nothing; a changed manifest redeploys with a new digest', () => {
  swarmReady();
  expectOk(swarm(['deploy', 'whoami_service', '--env', 'production']));
  host.clearCalls();
  const again = swarm(['deploy', 'whoami_service', '--env', 'production']);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /is up to date .*nothing to do/);
  assert.is(dockerCalls(host.calls(), 'docker', 'stack', 'deploy').length, 0);
  assert.is(dockerCalls(host.calls(), 'docker', 'network', 'create').length, 0);

  const manifest = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'etc', 'phoenix_stacks_config.json'), 'utf8'));
  const whoami = manifest.docker_stacks.whoami_service;
  whoami.compose_file_path = path.join(PROJECT_ROOT, 'etc', 'stacks', 'whoami_service', 'docker-compose.yml');
  whoami.environments.production.variables[0].value = 'worker-1-renamed';
  const changed = path.join(work, 'stacks-changed.json');
  fs.writeFileSync(changed, JSON.stringify(manifest));
  host.clearCalls();
  const redeploy = swarm(['deploy', 'whoami_service', '--env', 'production'], { STACKS_CONFIG_FILE: changed });
  assert.is(redeploy.code, 0, redeploy.stderr);
  assert.is(dockerCalls(host.calls(), 'docker', 'stack', 'deploy').length, 1);
  const service = Object.values(dockerState().swarms)[0]!.services.production_whoami_service_whoami!;
  assert.ok(service.command.includes('--name=worker-1-renamed'));
  assert.match(redeploy.stderr, /Updated .*docker-compose\.production\.rendered\.yml/);
  assert.ok(fs.readFileSync(renderedFile('whoami_service', 'production'), 'utf8').includes(service.labels[DIGEST_LABEL]!));
});

test('a stack with an external secret that does not exist is refused by name; with it, it deploys', () => {
  swarmReady();
  const missing = swarm(['deploy', 'portainer_service', '--env', 'production']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /needs the Swarm secret portainer_admin_password, which does not exist/);
  assert.is(dockerCalls(host.calls(), 'docker', 'stack', 'deploy').length, 0);
  assert.is(guest('1001', ['docker', 'secret', 'create', 'portainer_admin_password', '-'], 'not-the-real-one').exit, 0);
  const ok = swarm(['deploy', 'portainer_service', '--env', 'production']);
  assert.is(ok.code, 0, ok.stderr);
  const services = guest('1001', ['docker', 'service', 'ls', '--format', '{{.Name}} {{.Replicas}}']);
  assert.match(services.out, /production_portainer_service_portainer 1\/1/);
});

test('a failing docker command is reported with the command and its message; exit status passed through', () => {
  swarmReady();
  host.injectExec({ tool: 'qm', guest: '1001', command: ['docker', 'stack', 'deploy'], exit: 1, stderr: 'failed to create service production_whoami_service_whoami: Error response from daemon: rpc error: code = Unknown desc = update out of sequence\n' });
  const r = swarm(['deploy', 'whoami_service', '--env', 'production']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /'qm guest exec 1001 -- docker stack deploy --compose-file - --with-registry-auth production_whoami_service' failed with exit code 1: failed to create service .*update out of sequence/);
  host.updateInjection((inj) => void (inj.exec = []));
});

test('rm removes the stack and its rendered file; a second rm has nothing to remove', () => {
  swarmReady();
  expectOk(swarm(['deploy', 'whoami_service', '--env', 'production']));
  const rm = swarm(['rm', 'whoami_service', '--env', 'production']);
  assert.is(rm.code, 0, rm.stderr);
  assert.is(guest('1001', ['docker', 'stack', 'ls', '--format', '{{.Name}}']).out, '');
  assert.not.ok(fs.existsSync(renderedFile('whoami_service', 'production')));
  host.clearCalls();
  const again = swarm(['rm', 'whoami_service', '--env', 'production']);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /is not deployed; nothing to remove/);
  assert.is(dockerCalls(host.calls(), 'docker', 'stack', 'rm').length, 0);
});

test('status prints the nodes and the stacks on stdout', () => {
  swarmReady();
  expectOk(swarm(['deploy', 'whoami_service', '--env', 'production']));
  const r = swarm(['status']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ID +HOSTNAME +STATUS +AVAILABILITY +MANAGER STATUS +ENGINE VERSION\n/);
  assert.match(r.stdout, / \* +portainer +Ready +Active +Leader/);
  assert.match(r.stdout, /worker-1 +Ready/);
  assert.match(r.stdout, /production_whoami_service +1\n/);
});

test('status of a swarm that does not exist fails with docker\'s own message', () => {
  freshVms();
  const r = swarm(['status']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /docker node ls' failed with exit code 1: Error response from daemon: This node is not a swarm manager/);
});

test('--dry-run plans init, join and deploy without changing the swarm or writing files, and takes no lock', () => {
  freshVms();
  const init = swarm(['init', '--dry-run']);
  assert.is(init.code, 0, init.stderr);
  assert.match(init.stderr, /DRY-RUN: would run: qm guest exec 1001 --timeout 30 -- docker swarm init --advertise-addr 10.0.0.21/);
  assert.not.ok(fs.existsSync(path.join(host.stateDir, 'docker.json')) && Object.keys(dockerState().swarms).length > 0, 'no swarm');
  assert.not.ok(fs.existsSync(baseEnv.PHOENIX_LOCK_FILE!));
  swarmReady();
  assert.is(guest('1002', ['docker', 'swarm', 'leave']).exit, 0);
  const join = swarm(['join', '1002', '--dry-run']);
  assert.is(join.code, 0, join.stderr);
  assert.match(join.stderr, /DRY-RUN: would run: qm guest exec 1002 --timeout 30 --pass-stdin 1 -- xargs/);
  assert.is(dockerCalls(host.calls(), 'docker', 'swarm', 'join-token').length, 0, 'no token is read for a plan');
  const deploy = swarm(['deploy', 'whoami_service', '--env', 'production', '--dry-run']);
  assert.is(deploy.code, 0, deploy.stderr);
  assert.match(deploy.stderr, /DRY-RUN: would run: qm guest exec 1001 --timeout 30 --pass-stdin 1 -- docker stack deploy --compose-file - --with-registry-auth production_whoami_service/);
  assert.not.ok(fs.existsSync(renderedFile('whoami_service', 'production')));
  assert.is(guest('1001', ['docker', 'stack', 'ls', '--format', '{{.Name}}']).out, '');
});

test('mutating actions wait for the host lock (exit 75 when busy); status does not need it', async () => {
  swarmReady();
  const lockFile = baseEnv.PHOENIX_LOCK_FILE!;
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  const held = await acquireHostLock(lockFile, { script: 'test holder' });
  try {
    const busy = swarm(['init']);
    assert.is(busy.code, 75, busy.stderr);
    assert.is(dockerCalls(host.calls()).length, 0);
    expectOk(swarm(['status']));
  } finally {
    held.release();
  }
});

test('an unknown environment or stack is refused before anything runs', () => {
  swarmReady();
  const env = swarm(['deploy', 'whoami_service', '--env', 'prod']);
  assert.is(env.code, 1);
  assert.match(env.stderr, /phoenix_stacks_config\.json at \/docker_stacks\/whoami_service\/environments: stack 'whoami_service' has no environment 'prod'/);
  const stack = swarm(['deploy', 'nothing_here', '--env', 'production']);
  assert.is(stack.code, 1);
  assert.match(stack.stderr, /stack 'nothing_here' has no compose template/);
  assert.is(dockerCalls(host.calls()).length, 0);
});

// ---------------------------------------------------------------- rendering as data

test('interpolation: compose forms, values made literal for docker, unknown names left and reported', () => {
  const vars = new Map([
    ['A', 'x|y&z\\w'],
    ['P', 'pa$$word$HOME'],
    ['E', ''],
  ]);
  assert.is(interpolate('${A}', vars).text, 'x|y&z\\w');
  assert.is(interpolate('$P and ${P}', vars).text, 'pa$$$$word$$HOME and pa$$$$word$$HOME');
  assert.is(interpolate('${E:-dflt} ${E-dflt} ${A:+set} ${NOPE:-d}', vars).text, 'dflt  set ${NOPE:-d}');
  const left = interpolate('$$LITERAL ${MISSING} $ALSO', vars);
  assert.is(left.text, '$$LITERAL ${MISSING} $ALSO');
  assert.equal(left.unresolved.sort(), ['ALSO', 'MISSING']);
});

test('Traefik labels: enable added, mesh routers get tls, a missing port and foreign mesh TLS options are refused', () => {
  const ok = checkTraefikLabels([
    ['traefik.http.routers.a.rule', 'Host(`a.example`)'],
    ['traefik.http.routers.a.entrypoints', 'mesh'],
    ['traefik.http.services.a.loadbalancer.server.port', '80'],
  ]);
  assert.equal(ok.errors, []);
  assert.equal(ok.added, ['traefik.enable=true', 'traefik.http.routers.a.tls=true']);
  const bad = checkTraefikLabels([
    ['traefik.enable', 'true'],
    ['traefik.http.routers.a.entrypoints', 'mesh'],
    ['traefik.http.routers.a.tls.options', 'default'],
  ]);
  assert.is(bad.errors.length, 2);
  assert.match(bad.errors.join('\n'), /no traefik\.http\.services\.<name>\.loadbalancer\.server\.port/);
  assert.match(bad.errors.join('\n'), /tls\.options=default, which would replace mesh-mtls@file/);
});

test('renderStack: a value with shell and sed metacharacters survives a deploy unchanged; secret values are masked and the file is 0600', async () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'stacks', 'demo'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'stacks', 'demo', 'docker-compose.yml'),
    'services:\n  app:\n    image: alpine:3.20\n    command: ["echo", "${GREETING}", "$$HOME"]\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n    deploy:\n      labels:\n        - keep.me=yes\n',
  );
  const value = `it's a "test" | with & and \\ and $dollar`;
  const manifest = {
    docker_stacks: {
      demo: {
        environments: {
          production: {
            variables: [
              { name: 'GREETING', value },
              { name: 'DB_PASSWORD', value: 's3cr3t-value' },
            ],
            services: { app: { traefik_labels: ['traefik.http.routers.demo.rule=Host(`demo.example`)', 'traefik.http.routers.demo.entrypoints=mesh', 'traefik.http.services.demo.loadbalancer.server.port=8080'] } },
          },
        },
      },
    },
  };
  const manifestFile = path.join(dir, 'phoenix_stacks_config.json');
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  const config = loadConfig(resolveConfigPaths({ stacks: manifestFile }, { PHOENIX_BASE_DIR: PROJECT_ROOT }));
  clearSecrets();
  const rendered = await renderStack(config, 'demo', 'production', { baseDir: PROJECT_ROOT });
  assert.ok(rendered.sensitive);
  assert.is(redact('DB is s3cr3t-value'), 'DB is ***');
  assert.equal(rendered.substituted, ['DB_PASSWORD', 'GREETING']);
  assert.match(rendered.text, /- keep\.me=yes\n/);
  assert.match(rendered.text, /- traefik\.http\.routers\.demo\.tls=true\n/);
  assert.match(rendered.text, /- traefik\.enable=true\n/);

  // Deployed through the emulated docker, whose interpolation undoes the escaping.
  swarmReady();
  const deployed = guest('1001', ['docker', 'stack', 'deploy', '-c', '-', 'demo'], rendered.text);
  assert.is(deployed.exit, 0, deployed.err);
  const args = guest('1001', ['docker', 'service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Args}}', 'demo_app']).out;
  assert.equal(JSON.parse(args), ['echo', value, '$HOME']);
  const labels = JSON.parse(guest('1001', ['docker', 'service', 'inspect', '--format', '{{json .Spec.Labels}}', 'demo_app']).out);
  assert.is(labels['keep.me'], 'yes');
  assert.is(labels[DIGEST_LABEL], rendered.digest);
});

test.after(() => {
  host.dispose();
});

test.run();
