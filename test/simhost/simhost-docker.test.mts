// The docker emulation inside simulated VMs (simhost/programs/docker.mts),
// driven the way Phoenix drives it: `qm guest exec` on the simulated host. Checks the Swarm shared between VMs and the daemon's
// refusals, which is what makes swarm-manager's idempotency tests mean
// something.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { createSimHost, DEFAULT_TEMPLATE } from './index.mts';

const host = createSimHost();

function guest(vmid: string, argv: string[], input?: string): { exit: number; out: string; err: string } {
  const r = host.run('qm', ['guest', 'exec', vmid, ...(input === undefined ? [] : ['--pass-stdin', '1']), '--', ...argv], input === undefined ? {} : { input });
  assert.is(r.code, 0, r.stderr);
  const reply = JSON.parse(r.stdout) as { exitcode: number; 'out-data'?: string; 'err-data'?: string };
  return { exit: reply.exitcode, out: reply['out-data'] ?? '', err: reply['err-data'] ?? '' };
}

const docker = (vmid: string, args: string[], input?: string) => guest(vmid, ['docker', ...args], input);

function fresh(): void {
  host.reset();
  fs.rmSync(path.join(host.stateDir, 'docker.json'), { force: true });
  for (const [vmid, name, ip] of [
    ['1001', 'portainer', '10.0.0.21/24'],
    ['1002', 'worker-1', '10.0.0.22/24'],
    ['1003', 'worker-2', '10.0.0.23/24'],
  ] as const) {
    assert.is(host.run('qm', ['create', vmid, '--name', name, '--agent', '1', '--ipconfig0', `ip=${ip}`]).code, 0);
    assert.is(host.run('qm', ['start', vmid]).code, 0);
  }
}

function swarmOfTwo(): string {
  fresh();
  assert.is(docker('1001', ['swarm', 'init', '--advertise-addr', '10.0.0.21']).exit, 0);
  const token = docker('1001', ['swarm', 'join-token', '-q', 'worker']).out.trim();
  assert.is(docker('1002', ['swarm', 'join', '--token', token, '10.0.0.21:2377']).exit, 0);
  return token;
}

test('docker info: .Swarm as the Engine API gives it, inactive / manager / worker', () => {
  const token = swarmOfTwo();
  assert.equal(JSON.parse(docker('1003', ['info', '--format', '{{json .Swarm}}']).out), { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null });
  const manager = JSON.parse(docker('1001', ['info', '--format', '{{json .Swarm}}']).out);
  assert.is(manager.LocalNodeState, 'active');
  assert.is(manager.ControlAvailable, true);
  assert.is(manager.NodeAddr, '10.0.0.21');
  assert.is(manager.Nodes, 2);
  const worker = JSON.parse(docker('1002', ['info', '--format', '{{json .Swarm}}']).out);
  assert.is(worker.ControlAvailable, false);
  assert.equal(worker.RemoteManagers, [{ NodeID: manager.NodeID, Addr: '10.0.0.21:2377' }]);
  assert.is(worker.Cluster, undefined, 'only managers see the cluster');
  assert.is(docker('1001', ['info', '--format', '{{.Swarm.ControlAvailable}}']).out, 'true\n');
  assert.match(token, /^SWMTKN-1-[a-z0-9]{50}-[a-z0-9]{25}$/);
});

test('refusals: init twice, join when already in a swarm, bad token, nobody at the address, worker asking for cluster state', () => {
  const token = swarmOfTwo();
  const again = docker('1001', ['swarm', 'init', '--advertise-addr', '10.0.0.21']);
  assert.is(again.exit, 1);
  assert.match(again.err, /This node is already part of a swarm\. Use "docker swarm leave" to leave this swarm and join another one\./);
  const rejoin = docker('1002', ['swarm', 'join', '--token', token, '10.0.0.21:2377']);
  assert.is(rejoin.exit, 1);
  assert.match(rejoin.err, /already part of a swarm/);
  const forged = docker('1003', ['swarm', 'join', '--token', `${token.slice(0, -5)}aaaaa`, '10.0.0.21:2377']);
  assert.is(forged.exit, 1);
  assert.match(forged.err, /A valid join token is necessary to join this cluster/);
  const nobody = docker('1003', ['swarm', 'join', '--token', token, '10.0.0.99:2377']);
  assert.is(nobody.exit, 1);
  assert.match(nobody.err, /Timeout was reached before node joined/);
  const workerLs = docker('1002', ['node', 'ls']);
  assert.is(workerLs.exit, 1);
  assert.match(workerLs.err, /Worker nodes can't be used to view or modify cluster state/);
  const outsider = docker('1003', ['stack', 'ls']);
  assert.is(outsider.exit, 1);
  assert.match(outsider.err, /This node is not a swarm manager\. Use "docker swarm init" or "docker swarm join"/);
  const lastManager = docker('1001', ['swarm', 'leave']);
  assert.is(lastManager.exit, 1);
  assert.match(lastManager.err, /Removing the last manager erases all current state of the swarm/);
  const unknownFlag = docker('1001', ['swarm', 'init', '--bogus']);
  assert.is(unknownFlag.exit, 125);
  assert.match(unknownFlag.err, /unknown flag: --bogus/);
});

test('leave marks the node Down; its hostname becomes ambiguous after a rejoin; node rm of a live node is refused', () => {
  const token = swarmOfTwo();
  assert.is(docker('1002', ['swarm', 'leave']).out, 'Node left the swarm.\n');
  assert.match(docker('1001', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}']).out, /worker-1 Down/);
  assert.is(docker('1002', ['swarm', 'join', '--token', token, '10.0.0.21:2377']).exit, 0);
  const ambiguous = docker('1001', ['node', 'update', '--label-add', 'a=b', 'worker-1']);
  assert.is(ambiguous.exit, 1);
  assert.match(ambiguous.err, /node worker-1 is ambiguous \(2 matches found\)/);
  const live = JSON.parse(docker('1002', ['info', '--format', '{{json .Swarm}}']).out).NodeID as string;
  const refused = docker('1001', ['node', 'rm', live]);
  assert.is(refused.exit, 1);
  assert.match(refused.err, /is not down and can't be removed/);
  const stale = docker('1001', ['node', 'ls', '-q', '--filter', 'name=worker-1']).out.trim().split('\n').find((id) => id !== live)!;
  assert.is(docker('1001', ['node', 'rm', stale]).exit, 0);
  assert.is(docker('1001', ['node', 'update', '--label-add', 'role=apps', 'worker-1']).exit, 0);
  assert.equal(JSON.parse(docker('1001', ['node', 'inspect', '--format', '{{json .Spec.Labels}}', 'worker-1']).out), { role: 'apps' });
  const missing = docker('1001', ['node', 'inspect', 'nope']);
  assert.is(missing.exit, 1);
  assert.match(missing.err, /No such node: nope/);
});

test('stack deploy: missing file, external network and secret required, interpolation, placement, update in place, rm', () => {
  swarmOfTwo();
  const noFile = docker('1001', ['stack', 'deploy', '-c', '/mnt/stacks/x/docker-compose.yml', 'x']);
  assert.is(noFile.exit, 1);
  assert.match(noFile.err, /open \/mnt\/stacks\/x\/docker-compose\.yml: no such file or directory/);
  const compose = [
    'services:',
    '  web:',
    '    image: nginx:1.27',
    '    command: ["echo", "${UNSET}", "${DEF:-fallback}", "$$HOME"]',
    '    networks: [edge]',
    '    secrets: [api_key]',
    '    deploy:',
    '      placement:',
    '        constraints: [node.labels.role == apps]',
    '      labels: [a=b]',
    'networks:',
    '  edge:',
    '    external: true',
    '    name: traefik-public',
    'secrets:',
    '  api_key:',
    '    external: true',
    '',
  ].join('\n');
  const noNet = docker('1001', ['stack', 'deploy', '-c', '-', 'demo'], compose);
  assert.is(noNet.exit, 1);
  assert.match(noNet.err, /network "traefik-public" is declared as external, but could not be found/);
  assert.is(docker('1001', ['network', 'create', '--driver', 'overlay', '--attachable', 'traefik-public']).exit, 0);
  const dup = docker('1001', ['network', 'create', '--driver', 'overlay', 'traefik-public']);
  assert.match(dup.err, /network with name traefik-public already exists/);
  const noSecret = docker('1001', ['stack', 'deploy', '-c', '-', 'demo'], compose);
  assert.is(noSecret.exit, 1);
  assert.match(noSecret.err, /service web: secret not found: api_key/);
  assert.is(docker('1001', ['secret', 'create', 'api_key', '-'], 'value').exit, 0);
  const exists = docker('1001', ['secret', 'create', 'api_key', '-'], 'value');
  assert.is(exists.exit, 1);
  assert.match(exists.err, /secret api_key already exists/);
  const deployed = docker('1001', ['stack', 'deploy', '-c', '-', 'demo'], compose);
  assert.is(deployed.exit, 0, deployed.err);
  assert.is(deployed.out, 'Creating service demo_web\n');
  assert.equal(JSON.parse(docker('1001', ['service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Args}}', 'demo_web']).out), ['echo', '', 'fallback', '$HOME']);
  assert.is(docker('1001', ['stack', 'services', 'demo', '--format', '{{.Replicas}}']).out, '0/1\n', 'no node has role=apps yet');
  assert.is(docker('1001', ['node', 'update', '--label-add', 'role=apps', 'worker-1']).exit, 0);
  assert.is(docker('1001', ['stack', 'services', 'demo', '--format', '{{.Replicas}}']).out, '1/1\n');
  assert.match(docker('1002', ['ps', '--format', '{{.Names}}']).out, /^demo_web\.1\./);
  assert.match(docker('1001', ['stack', 'deploy', '-c', '-', 'demo'], compose).out, /^Updating service demo_web \(id: \w+\)\n$/);
  const inUse = docker('1001', ['secret', 'rm', 'api_key']);
  assert.is(inUse.exit, 1);
  assert.match(inUse.err, /secret 'api_key' is in use by the following service: demo_web/);
  assert.is(docker('1001', ['service', 'ls', '-q', '--filter', 'label=a=b']).out.trim().length, 12);
  assert.match(docker('1001', ['service', 'update', '--force', '--detach', 'demo_web']).out, /^demo_web\n$/);
  const required = docker('1001', ['stack', 'deploy', '-c', '-', 'other'], 'services:\n  a:\n    image: "${IMG:?set IMG}"\n');
  assert.is(required.exit, 1);
  assert.match(required.err, /required variable IMG is missing a value: set IMG/);
  assert.is(docker('1001', ['stack', 'rm', 'demo']).out, 'Removing service demo_web\n');
  const nothing = docker('1001', ['stack', 'rm', 'demo']);
  assert.is(nothing.exit, 0);
  assert.match(nothing.err, /Nothing found in stack: demo/);
  assert.is(docker('1001', ['secret', 'rm', 'api_key']).exit, 0);
});

test('secrets keep only a digest; containers: run, name conflict, rm -f of a missing one', () => {
  swarmOfTwo();
  assert.is(docker('1001', ['secret', 'create', 'portainer_admin_password', '-'], 'Sup3r-Secret!').exit, 0);
  assert.not.ok(fs.readFileSync(path.join(host.stateDir, 'docker.json'), 'utf8').includes('Sup3r-Secret!'));
  assert.is(docker('1001', ['secret', 'ls', '--filter', 'name=portainer_admin', '--format', '{{.Name}}']).out, 'portainer_admin_password\n');
  assert.is(docker('1002', ['run', '-d', '--name', 'portainer_agent', '-p', '9001:9001', 'portainer/agent:2.21.5']).exit, 0);
  const conflict = docker('1002', ['run', '-d', '--name', 'portainer_agent', 'portainer/agent:2.21.5']);
  assert.is(conflict.exit, 125);
  assert.match(conflict.err, /The container name "\/portainer_agent" is already in use/);
  assert.match(docker('1002', ['ps', '--format', '{{.Names}}']).out, /^portainer_agent$/m);
  assert.is(docker('1002', ['rm', '-f', 'portainer_agent']).exit, 0);
  assert.is(docker('1002', ['rm', '-f', 'portainer_agent']).exit, 0, 'rm -f of a missing container is no error');
  const plain = docker('1002', ['rm', 'portainer_agent']);
  assert.is(plain.exit, 1);
  assert.match(plain.err, /No such container: portainer_agent/);
});

test('xargs hands stdin to the command line inside the guest; the host argv never holds it', () => {
  fresh();
  assert.is(docker('1001', ['swarm', 'init', '--advertise-addr', '10.0.0.21']).exit, 0);
  const token = docker('1001', ['swarm', 'join-token', '-q', 'worker']).out.trim();
  host.clearCalls();
  const joined = guest('1002', ['xargs', '-r', '-I', '{}', 'docker', 'swarm', 'join', '--token', '{}', '10.0.0.21:2377'], `${token}\n`);
  assert.is(joined.exit, 0, joined.err);
  assert.is(joined.out, 'This node joined a swarm as a worker.\n');
  assert.not.ok(fs.readFileSync(path.join(host.stateDir, 'calls.jsonl'), 'utf8').includes(token));
  const failed = guest('1003', ['xargs', '-r', '-I', '{}', 'docker', 'swarm', 'join', '--token', '{}', '10.0.0.99:2377'], `${token}\n`);
  assert.is(failed.exit, 123, 'xargs reports a failed command as 123');
  assert.is(guest('1003', ['xargs', '-r', 'docker', 'info'], '').exit, 0, '-r runs nothing on empty input');
});

test('docker in a container (pct exec) stays unmodelled: exit 0, no output, only recorded', () => {
  fresh();
  const created = host.run('pct', ['create', '120', `local:vztmpl/${DEFAULT_TEMPLATE}`, '--hostname', 'dockerct', '--rootfs', 'local-lvm:4', '--net0', 'name=eth0,bridge=vmbr0,ip=10.0.0.40/24']);
  assert.is(created.code, 0, created.stderr);
  assert.is(host.run('pct', ['start', '120']).code, 0);
  const r = host.run('pct', ['exec', '120', '--', 'docker', 'swarm', 'join-token', '-q', 'worker']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '');
});

test.after(() => host.dispose());

test.run();
