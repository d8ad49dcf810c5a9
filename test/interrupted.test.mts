// Hard stops: a run killed with SIGKILL at a chosen point (its whole process
// group: the CLI, its managers and the Proxmox tools they were running),
// then the same command again. The second run must exit 0 and leave the
// simulated host exactly as one uninterrupted run leaves it: guest configs
// and snapshots (minus what differs between any two runs: MACs, UUIDs,
// times, generated keys), run states, lifecycle records and the host's files.
//
// Killing is deterministic: an inject.json rule with `times: 1` holds the
// chosen call (a long delay, or a slowed tool while a half-made guest
// exists); once the rule has been consumed the run is known to be there and
// its group is killed. Each case starts from a copy of a prepared state.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createSimHost } from './simhost/index.mts';
import type { Injection } from './simhost/inject.mts';
import { tmpDir } from './helpers/tmp.mts';
import { CLI, cliEnv } from './helpers/run-phoenix.mts';
import { PROJECT_ROOT } from '../lib/bridge.mts';

const VM_MANAGER = path.join(PROJECT_ROOT, 'scripts', 'managers', 'vm-manager.mjs');
const host = createSimHost();
const work = tmpDir('phoenix-interrupted-');
const base = path.join(work, 'base');
fs.cpSync(path.join(PROJECT_ROOT, 'etc'), path.join(base, 'etc'), { recursive: true });
const env = cliEnv(host, work, base);
const saved = path.join(work, 'saved');
fs.mkdirSync(saved);

// ---------------------------------------------------------------- states

/** `cp -a`: the simulator keeps ownership in the files themselves when it runs as root. */
function copyTree(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  const r = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -a ${from} ${to}: ${r.stderr}`);
}

function save(name: string): void {
  copyTree(host.stateDir, path.join(saved, name));
}

function restore(name: string): void {
  copyTree(path.join(saved, name), host.stateDir);
  for (const f of fs.readdirSync(work)) if (f.endsWith('.lock')) fs.rmSync(path.join(work, f), { force: true });
}

/** What differs between any two uninterrupted runs, masked. */
function normalise(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----\n?/g, '<PEM>\n')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<UUID>')
    .replace(/\b[0-9A-F]{2}(:[0-9A-F]{2}){5}\b/gi, '<MAC>')
    .replace(/\b[0-9a-f]{64}\b/g, '<SHA256>')
    .replace(/^snaptime: \d+$/gm, 'snaptime: <T>')
    .replace(/ctime=\d+/g, 'ctime=<T>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<ISO>');
}

/** Files whose content is secret or generated anew by every run: only their presence and mode count. */
const RANDOM_CONTENT = /(password|\.key$|\.crt$|\.pem$|\.srl$|ca\.json$|defaults\.json$|\/db\/|fingerprint|ca\.ready$|\.json\.lock$)/;

function treeFingerprint(dir: string, rel = ''): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const name = path.join(rel, entry.name);
    const full = path.join(dir, name);
    const st = fs.lstatSync(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (entry.isDirectory()) {
      out.push(`${name}/ ${mode} ${st.uid}:${st.gid}`);
      out.push(...treeFingerprint(dir, name));
    } else if (entry.isSymbolicLink()) {
      out.push(`${name} -> ${fs.readlinkSync(full)}`);
    } else {
      const content = RANDOM_CONTENT.test(name) ? '<random>' : crypto.createHash('sha256').update(normalise(fs.readFileSync(full, 'utf8'))).digest('hex').slice(0, 16);
      out.push(`${name} ${mode} ${st.uid}:${st.gid} ${content}`);
    }
  }
  return out;
}

/** The host as the tests compare it. */
function fingerprint(): Record<string, string[]> {
  const state = host.stateDir;
  const configs = (kind: string) =>
    fs
      .readdirSync(path.join(state, 'pve', kind))
      .filter((f) => f.endsWith('.conf'))
      .sort()
      .flatMap((f) => [`== ${f}`, ...normalise(fs.readFileSync(path.join(state, 'pve', kind, f), 'utf8')).split('\n')]);
  const runtime = host.runtime() as unknown as { guests?: Record<string, { status?: string }> };
  const states = Object.entries(runtime.guests ?? {})
    .map(([id, g]) => `${id} ${g.status ?? '?'}`)
    .sort();
  return {
    lxc: configs('lxc'),
    qemu: configs('qemu-server'),
    firewall: treeFingerprint(path.join(state, 'pve', 'firewall')),
    states,
    records: treeFingerprint(path.join(state, 'hostfs', 'var', 'lib', 'phoenix')),
    hostfs: treeFingerprint(path.join(state, 'hostfs')),
    guests: fs.readdirSync(path.join(state, 'guests')).sort().flatMap((id) => treeFingerprint(path.join(state, 'guests', id), 'fs').map((l) => `${id}/${l}`)),
  };
}

function assertSameHost(actual: Record<string, string[]>, expected: Record<string, string[]>, what: string): void {
  for (const key of Object.keys(expected)) {
    const want = new Set(expected[key]);
    const got = new Set(actual[key]);
    const missing = [...want].filter((l) => !got.has(l));
    const extra = [...got].filter((l) => !want.has(l));
    assert.equal({ missing, extra }, { missing: [], extra: [] }, `${what}: ${key} differs from an uninterrupted run`);
  }
}

// ---------------------------------------------------------------- runs

interface Outcome {
  code: number;
  stderr: string;
}

function runTo(argv: string[]): Outcome {
  const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? -1, stderr: r.stderr };
}

const phoenix = (...args: string[]) => [CLI, ...args];
const vmManager = (...args: string[]) => [VM_MANAGER, ...args];

const errorsOf = (stderr: string) => stderr.split('\n').filter((l) => /\[(ERROR|WARN)\]/.test(l)).join('\n') || stderr.slice(-2000);

/**
 * Start `argv` in its own process group with `injection` in place, wait
 * until `reached()` says the run is at the chosen point, SIGKILL the group.
 */
async function killAt(argv: string[], injection: Injection, reached: () => boolean): Promise<void> {
  host.setInjection(injection);
  const child = spawn(process.execPath, argv, { env, detached: true, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done: number | null | undefined;
  void exited.then((c) => (done = c));
  const deadline = Date.now() + 120_000;
  try {
    while (!reached()) {
      if (done !== undefined) throw new Error(`${argv.slice(1).join(' ')} ended (exit ${done}) before the kill point was reached`);
      if (Date.now() > deadline) throw new Error(`${argv.slice(1).join(' ')} never reached the kill point`);
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    host.setInjection({});
  }
}

/** The rule `times: 1` was consumed: the run is inside that call. */
function consumed(): boolean {
  let inj: Injection;
  try {
    inj = JSON.parse(fs.readFileSync(path.join(host.stateDir, 'inject.json'), 'utf8')) as Injection;
  } catch {
    return false;
  }
  return [...(inj.failures ?? []), ...(inj.exec ?? []), ...(inj.slow ?? [])].some((r) => r.times === 0);
}

const HOLD = 600_000;
const holdCall = (tool: string, argv: string[]): Injection => ({ failures: [{ tool, argv, times: 1, delay_ms: HOLD, exit: 1, stderr: 'held\n' }] });
/** The Proxmox task runs its first half (the lock mark and what it prepares), then is held. */
const holdTask = (tool: string, argv: string[]): Injection => ({ slow: [{ tool, argv, times: 1, latency_ms: HOLD }] });
const holdGuest = (rule: Injection['exec'] extends (infer R)[] | undefined ? R : never): Injection => ({ exec: [{ ...rule, times: 1, duration_ms: HOLD, exit: 1 }], time_scale: 1 });
const configHas = (kind: 'lxc' | 'qemu', id: string, pattern: RegExp) => () => pattern.test(host.readConfigText(kind, id) ?? '');

// ---------------------------------------------------------------- references

let ref103: Record<string, string[]>;
let ref1001: Record<string, string[]>;

test('references: the uninterrupted runs', () => {
  save('empty');
  let r = runTo(phoenix('create', '900'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  save('ct-template');
  r = runTo(phoenix('create', '103'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  ref103 = fingerprint();
  // The VMs trust the CA: their phase starts where LetsGo's starts it, with the CA there.
  r = runTo(vmManager('create', '9000'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  save('vm-template');
  r = runTo(vmManager('create', '1001'));
  assert.is(r.code, 0, errorsOf(r.stderr));
  assert.match(host.readConfigText('qemu', '1001') ?? '', /^\[cloud-base\]$/m);
  ref1001 = fingerprint();
});

// ---------------------------------------------------------------- phoenix create 103

interface Case {
  name: string;
  from: string;
  argv: string[];
  injection: Injection;
  reached?: () => boolean;
  /** Instead of a kill: the first run fails by itself. */
  fails?: boolean;
  /** What the second run must say. */
  says?: RegExp;
  expected: () => Record<string, string[]>;
}

const cases: Case[] = [
  {
    name: 'create 103 killed while Proxmox creates CT 900 (its config still says lock: create)',
    from: 'empty',
    argv: phoenix('create', '103'),
    injection: { latency: { pct: 1500 } },
    reached: configHas('lxc', '900', /^lock: create$/m),
    says: /CT 900 is marked 'lock: create' by a create or clone that did not finish/,
    expected: () => ref103,
  },
  {
    name: 'create 103 killed while CT 900 is cloned (103 half-made, 900 marked lock: disk)',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: { latency: { pct: 1500 } },
    reached: configHas('lxc', '103', /^lock: create$/m),
    says: /CT 900 is still marked 'lock: disk'.*\n[\s\S]*CT 103 is marked 'lock: create'|CT 103 is marked 'lock: create'[\s\S]*CT 900 is still marked 'lock: disk'/,
    expected: () => ref103,
  },
  {
    name: 'create 103 killed right after the clone, before its configuration',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdCall('pct', ['set', '103']),
    expected: () => ref103,
  },
  {
    name: 'create 103 killed while the step_ca feature installs its packages',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdGuest({ guest: '103', stdin_contains: 'packages.smallstep.com' }),
    says: /taking over the stale lock/,
    expected: () => ref103,
  },
  {
    name: 'create 103 whose package install fails, run again',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: { exec: [{ guest: '103', stdin_contains: 'packages.smallstep.com', times: 1, exit: 100, stderr: 'E: Unable to fetch some archives\n' }] },
    fails: true,
    says: /CT 103 holds the CA and is not finished/,
    expected: () => ref103,
  },
  {
    name: 'create 103 killed during step ca init',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdGuest({ guest: '103', contains: 'step ca init' }),
    says: /CT 103 holds the CA and is not finished/,
    expected: () => ref103,
  },
  {
    name: 'create 103 killed right after step ca init, before the provisioner password copy was removed',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdGuest({ guest: '103', command: ['rm', '-f'], contains: '.phoenix-provisioner-password.' }),
    says: /removing \/root\/\.phoenix-provisioner-password\.[0-9a-f]+ in CT 103/,
    expected: () => ref103,
  },

  {
    name: 'create 103 killed before the root CA is copied to the host',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdCall('pct', ['pull', '103']),
    expected: () => ref103,
  },
  {
    name: 'create 103 killed before its last snapshot',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdCall('pct', ['snapshot', '103', 'final-form']),
    expected: () => ref103,
  },
  {
    name: 'create 103 killed while Proxmox takes its final-form snapshot (lock: snapshot, snapstate: prepare)',
    from: 'ct-template',
    argv: phoenix('create', '103'),
    injection: holdTask('pct', ['snapshot', '103', 'final-form']),
    says: /CT 103 is marked 'lock: snapshot' by a snapshot task that did not finish[\s\S]*removing snapshot 'final-form', left unfinished \(snapstate prepare\)/,
    expected: () => ref103,
  },
  // ---------------------------------------------------------------- the VM phase
  {
    name: 'VM 1001 killed while Proxmox clones it (its config still says lock: clone)',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: { latency: { qm: 1500 } },
    reached: configHas('qemu', '1001', /^lock: clone$/m),
    says: /VM 1001 is marked 'lock: clone'/,
    expected: () => ref1001,
  },
  {
    name: 'VM 1001 killed right after qm clone, before its cloud-base snapshot',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: holdCall('qm', ['snapshot', '1001', 'cloud-base']),
    says: /the clone of 9000 was interrupted before its snapshot 'cloud-base'; taking it now/,
    expected: () => ref1001,
  },

  {
    name: 'VM 1001 killed while Proxmox takes its cloud-base snapshot (lock: snapshot)',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: holdTask('qm', ['snapshot', '1001', 'cloud-base']),
    says: /VM 1001 is marked 'lock: snapshot'[\s\S]*removing snapshot 'cloud-base'[\s\S]*taking it now/,
    expected: () => ref1001,
  },
  {
    name: 'VM 1001 killed before it first starts',
    from: 'vm-template',
    argv: vmManager('create', '1001'),
    injection: holdCall('qm', ['start', '1001']),
    expected: () => ref1001,
  },
];

// INTERRUPTED_ONLY=<words> runs the cases whose name contains them (after the references).
const only = process.env.INTERRUPTED_ONLY;
for (const c of cases.filter((k) => only === undefined || k.name.includes(only))) {
  test(c.name, async () => {
    restore(c.from);
    if (c.fails) {
      host.setInjection(c.injection);
      const first = runTo(c.argv);
      host.setInjection({});
      assert.is.not(first.code, 0, 'the first run fails');
    } else {
      await killAt(c.argv, c.injection, c.reached ?? consumed);
    }
    const second = runTo(c.argv);
    assert.is(second.code, 0, `the run after the interruption:\n${errorsOf(second.stderr)}`);
    if (c.says) assert.match(second.stderr, c.says);
    assertSameHost(fingerprint(), c.expected(), c.name);
    // No copy of the provisioner password is ever left in the CA container.
    const root = host.guestPath('103', '/root');
    if (fs.existsSync(root)) assert.equal(fs.readdirSync(root).filter((n) => n.startsWith('.phoenix-provisioner-password')), []);
  });
}

test.after(() => host.dispose());
test.run();
