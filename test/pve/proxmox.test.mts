// The typed pct/qm/storage wrappers against the simulated host: what they
// send, how they read the answers, the wrappers pct and qm share
// (lib/pve/guest-tool.mts), and the runner's lock-time-out retry on a
// realistic refusal.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { createSimHost } from '../simhost/index.mts';
import * as pct from '../../lib/pve/pct.mts';
import * as qm from '../../lib/pve/qm.mts';
import * as storage from '../../lib/pve/storage.mts';
import { toolFor, type GuestKind } from '../../lib/pve/guest-tool.mts';
import { configureLog } from '../../lib/core/log.mts';
import { setProcessContext, withRunContext } from '../../lib/core/context.mts';
import { CommandError, PhoenixError } from '../../lib/core/errors.mts';
import { tmpDir } from '../helpers/tmp.mts';

const host = createSimHost();
Object.assign(process.env, host.env, { PHOENIX_PVE_LOCK_DELAY_MS: '10' });
configureLog({ file: undefined, write: () => {} });
const work = tmpDir();
const TEMPLATE = 'fastData-shared-iso:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst';

test.before.each(() => {
  host.reset();
  setProcessContext({ dryRun: false });
});

test('status: absent, stopped, running', async () => {
  assert.is(await pct.status('900'), 'absent');
  assert.not.ok(await pct.exists('900'));
  await pct.create('900', TEMPLATE, { storage: 'quickOS-lxc-disks',  hostname: 'base', memory: 1024, unprivileged: true });
  assert.is(await pct.status('900'), 'stopped');
  await pct.start('900');
  assert.is(await pct.status('900'), 'running');
  assert.is(await qm.status('9000'), 'absent');
});

test('config reads the live section, options are spelled as pct wants', async () => {
  await pct.create('101', TEMPLATE, { storage: 'quickOS-lxc-disks',  hostname: 'gw', memory: 2048, onboot: true });
  const cfg = await pct.config('101');
  assert.is(cfg.values.memory, '2048');
  assert.is(cfg.values.hostname, 'gw');
  assert.is(cfg.values.onboot, '1');
  await pct.snapshot('101', 'pre-features');
  await pct.set('101', { memory: 4096 });
  assert.is((await pct.config('101')).values.memory, '4096', 'snapshot sections are not read as live config');
  assert.equal(await pct.listSnapshots('101'), ['pre-features']);
});

test('templates: isTemplate, and the real refusal to start one', async () => {
  await pct.create('900', TEMPLATE, { storage: 'quickOS-lxc-disks',  hostname: 'base' });
  await pct.template('900');
  assert.ok(await pct.isTemplate('900'));
  try {
    await pct.start('900');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandError);
    assert.match((err as Error).message, /template/);
  }
});

test('ensureRunning / ensureStopped are idempotent', async () => {
  await pct.create('103', TEMPLATE, { storage: 'quickOS-lxc-disks',  hostname: 'ca' });
  assert.is(await pct.ensureRunning('103'), 'started');
  assert.is(await pct.ensureRunning('103'), 'unchanged');
  assert.is(await pct.ensureStopped('103'), 'stopped');
  assert.is(await pct.ensureStopped('103'), 'unchanged');
});

test('exec probes, scripts on stdin, push and pull', async () => {
  await pct.create('102', TEMPLATE, { storage: 'quickOS-lxc-disks',  hostname: 'traefik' });
  await pct.start('102');
  assert.not.ok(await pct.test('102', '-f', '/etc/traefik/traefik.yml'));
  const src = path.join(work, 'traefik.yml');
  fs.writeFileSync(src, 'entryPoints: {}\n');
  try {
    await pct.push('102', src, '/etc/traefik/traefik.yml');
    assert.unreachable('pct push does not create directories');
  } catch (err) {
    assert.instance(err, CommandError);
  }
  await pct.pushFile('102', src, '/etc/traefik/traefik.yml', { perms: '0644' });
  assert.ok(await pct.test('102', '-f', '/etc/traefik/traefik.yml'));
  const back = path.join(work, 'pulled.yml');
  await pct.pull('102', '/etc/traefik/traefik.yml', back);
  assert.is(fs.readFileSync(back, 'utf8'), 'entryPoints: {}\n');
  host.clearCalls();
  await pct.execScript('102', 'echo "secret body"\n');
  const call = host.calls('pct').at(-1)!;
  assert.equal(call.argv, ['exec', '102', '--', 'bash', '-s', '--']);
  assert.ok((call.stdin_bytes ?? 0) > 0);
  assert.not.match(JSON.stringify(host.calls()), /secret body/);
});

test('dry-run: mutations are not sent, queries are', async () => {
  host.clearCalls();
  await withRunContext({ dryRun: true }, async () => {
    await pct.create('104', TEMPLATE, { storage: 'quickOS-lxc-disks',  hostname: 'x' });
    assert.is(await pct.status('104'), 'absent');
  });
  assert.equal(host.calls().map((c) => c.argv[0]), ['status']);
});

test('a Proxmox config-lock time-out is retried by the runner', async () => {
  await pct.create('101', TEMPLATE, { storage: 'quickOS-lxc-disks',  hostname: 'gw' });
  host.injectLockTimeout('pct', ['set', '101'], 2);
  host.clearCalls();
  await pct.set('101', { cores: 2 });
  assert.is(host.calls('pct').filter((c) => c.argv[0] === 'set').length, 3);
  assert.is((await pct.config('101')).values.cores, '2');
});

test('storage wrappers read pvesm, pveam, zfs and zpool', async () => {
  assert.ok(await storage.storageExists('quickOS-lxc-disks'));
  assert.not.ok(await storage.storageExists('no-such-storage'));
  const templates = await storage.pveamList('fastData-shared-iso');
  assert.ok(templates.some((t) => t.endsWith('ubuntu-24.04-standard_24.04-2_amd64.tar.zst')));
  assert.ok((await storage.zpoolNames()).includes('quickOS'));
  await storage.zfsCreate('quickOS/phoenix-test', { compression: 'lz4' });
  assert.ok(await storage.zfsDatasetExists('quickOS/phoenix-test'));
  assert.not.ok(await storage.zfsDatasetExists('quickOS/phoenix'), 'exact match, not a prefix or regex');
  assert.is(await storage.zfsGet('quickOS/phoenix-test', 'compression'), 'lz4');
});

test('pct and qm export the one set of shared wrappers; toolFor picks it by kind', () => {
  assert.is(toolFor('lxc').program, 'pct');
  assert.is(toolFor('vm').program, 'qm');
  for (const name of ['status', 'configIfExists', 'set', 'shutdown', 'destroy', 'snapshot', 'ensureStopped'] as const) {
    assert.is(pct[name], toolFor('lxc')[name], `pct.${name}`);
    assert.is(qm[name], toolFor('vm')[name], `qm.${name}`);
  }
  assert.is.not(pct.status, qm.status, 'each tool runs its own program');
});

/** One pass of the shared wrappers over a stopped guest; what each returned. */
async function sharedPass(kind: GuestKind, id: string): Promise<unknown[]> {
  const tool = toolFor(kind);
  const seen: unknown[] = [];
  await tool.set(id, { onboot: true });
  await tool.set(id, { memory: 1024 }, ['onboot']);
  seen.push((await tool.config(id)).values.onboot, (await tool.config(id)).values.memory);
  await tool.snapshot(id, 'base', 'first state');
  seen.push(await tool.listSnapshots(id), await tool.snapshotState(id, 'base'));
  await tool.deleteSnapshot(id, 'base', { force: true });
  seen.push(await tool.listSnapshots(id), await tool.isRunning(id));
  seen.push(await tool.ensureRunning(id), await tool.ensureRunning(id), await tool.isRunning(id));
  await tool.shutdown(id, 30, { forceStop: true });
  seen.push(await tool.status(id), await tool.ensureStopped(id));
  await tool.destroy(id, { purge: true });
  seen.push(await tool.status(id), await tool.exists(id), await tool.configIfExists(id));
  return seen;
}

test('the shared wrappers answer and send the same for pct and qm', async () => {
  await pct.create('900', TEMPLATE, { storage: 'quickOS-lxc-disks', hostname: 'base', memory: 512 });
  await qm.create('9001', { name: 'probe', memory: 512 });
  host.clearCalls();
  const expected = [undefined, '1024', ['base'], undefined, [], false, 'started', 'unchanged', true, 'stopped', 'unchanged', 'absent', false, undefined];
  assert.equal(await sharedPass('lxc', '900'), expected);
  assert.equal(await sharedPass('vm', '9001'), expected);
  const sent = (tool: 'pct' | 'qm', id: string) => host.calls(tool).filter(isChange).map((c) => c.argv.join(' ').replace(id, 'ID'));
  assert.equal(sent('pct', '900'), [
    'set ID --onboot 1',
    'set ID --memory 1024 --delete onboot',
    'snapshot ID base --description first state',
    'delsnapshot ID base --force 1',
    'start ID',
    'shutdown ID --timeout 30 --forceStop 1',
    'destroy ID --purge 1',
  ]);
  assert.equal(sent('qm', '9001'), sent('pct', '900'));
});

function isChange(call: { argv: readonly string[] }): boolean {
  return !['status', 'config', 'listsnapshot'].includes(call.argv[0] ?? '');
}

test('an absent guest: absent to status and configIfExists of both tools; config itself fails with the tool\'s words', async () => {
  for (const kind of ['lxc', 'vm'] as const) {
    assert.is(await toolFor(kind).status('4242'), 'absent', kind);
    assert.is(await toolFor(kind).configIfExists('4242'), undefined, kind);
    assert.not.ok(await toolFor(kind).isRunning('4242'), kind);
  }
  try {
    await qm.config('4242');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandError);
    assert.match((err as Error).message, /qm config 4242/);
  }
});

async function readyVm(): Promise<void> {
  await qm.create('1001', { name: 'portainer', memory: 2048, agent: 'enabled=1' });
  await qm.start('1001');
  await qm.waitForAgent('1001', 20_000, 100);
}

test('guestExec returns the real exit status and output', async () => {
  await readyVm();
  host.injectExec({ tool: 'qm', guest: 1001, contains: 'docker info', stdout: 'Swarm: active\n', exit: 0 });
  const ok = await qm.guestExec('1001', ['docker', 'info'], { pollMs: 50 });
  assert.is(ok.exitcode, 0);
  assert.is(ok.stdout, 'Swarm: active\n');
  host.injectExec({ tool: 'qm', guest: 1001, contains: 'false-cmd', exit: 3, stderr: 'nope' });
  try {
    await qm.guestExec('1001', ['false-cmd'], { pollMs: 50 });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandError);
    assert.is((err as CommandError).exitCode, 3);
  }
});

test('a guest command longer than the agent wait is polled, never taken for success', async () => {
  await readyVm();
  host.injectExec({ tool: 'qm', guest: 1001, contains: 'cloud-init', duration_ms: 1500, exit: 0, stdout: 'status: done\n' });
  host.clearCalls();
  const r = await qm.guestExec('1001', ['cloud-init', 'status', '--wait'], { agentWaitSeconds: 1, pollMs: 200 });
  assert.is(r.stdout, 'status: done\n');
  assert.ok(host.calls('qm').some((c) => c.argv[1] === 'exec-status'), 'exec-status was polled');

  host.injectExec({ tool: 'qm', guest: 1001, contains: 'apt-get', duration_ms: 60_000, exit: 0 });
  try {
    await qm.guestExec('1001', ['apt-get', 'upgrade'], { agentWaitSeconds: 1, pollMs: 100, timeoutMs: 1500 });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PhoenixError);
    assert.match((err as Error).message, /still running after/);
  }
});

test.after(() => host.dispose());
test.run();
