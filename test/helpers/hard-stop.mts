// Hard stops on the simulated host: save and restore its whole state, kill a
// run (its process group: the CLI, its managers and the Proxmox tools they
// were running) at a point an injection rule holds it at, and compare the
// host after the re-run with the host after one uninterrupted run.
//
// Killing is deterministic: an inject.json rule with `times: 1` holds the
// chosen call (a long delay, or a slowed Proxmox task after its first
// half); once the rule has been consumed the run is known to be there and
// its group is killed.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as assert from 'uvu/assert';
import type { SimHost } from '../simhost/index.mts';
import type { ExecRule, Injection } from '../simhost/inject.mts';

/** `cp -a`: the simulator keeps ownership in the files themselves when it runs as root. */
export function copyTree(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  const r = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -a ${from} ${to}: ${r.stderr}`);
}

/** Named copies of a simulated host's state, and the lock files of the runs beside them. */
export function stateShelf(host: SimHost, shelf: string, lockDir: string): { save(name: string): void; restore(name: string): void } {
  fs.mkdirSync(shelf, { recursive: true });
  return {
    save: (name) => copyTree(host.stateDir, path.join(shelf, name)),
    restore: (name) => {
      copyTree(path.join(shelf, name), host.stateDir);
      for (const f of fs.readdirSync(lockDir)) if (f.endsWith('.lock')) fs.rmSync(path.join(lockDir, f), { force: true });
    },
  };
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

/** Files whose content is secret or generated anew by every run: only their presence, owner and mode count. */
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

export type HostPrint = Record<string, string[]>;

/**
 * The host as the tests compare it: guest configs and snapshots, firewall
 * files, run states, lifecycle records, the host's files and each guest's
 * files (minus what differs between any two runs: MACs, UUIDs, times,
 * generated keys).
 */
export function hostPrint(host: SimHost): HostPrint {
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

export function assertSameHost(actual: HostPrint, expected: HostPrint, what: string): void {
  for (const key of Object.keys(expected)) {
    const want = new Set(expected[key]);
    const got = new Set(actual[key]);
    const missing = [...want].filter((l) => !got.has(l));
    const extra = [...got].filter((l) => !want.has(l));
    assert.equal({ missing, extra }, { missing: [], extra: [] }, `${what}: ${key} differs from an uninterrupted run`);
  }
}

export interface Outcome {
  code: number;
  stderr: string;
}

/** A run to its end, bounded in time. */
export function runTo(argv: string[], env: Record<string, string>): Outcome {
  const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? -1, stderr: r.stderr };
}

/** The same, without blocking the event loop (for tests that serve HTTP in-process). */
export function runAsync(argv: string[], env: Record<string, string>): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stderr });
    });
  });
}

export const errorsOf = (stderr: string): string => stderr.split('\n').filter((l) => /\[(ERROR|WARN)\]/.test(l)).join('\n') || stderr.slice(-2000);

/**
 * Start `argv` in its own process group with `injection` in place, wait
 * until `reached()` says the run is at the chosen point, SIGKILL the group.
 */
export async function killAt(host: SimHost, argv: string[], env: Record<string, string>, injection: Injection, reached: () => boolean = () => consumed(host)): Promise<void> {
  host.setInjection(injection);
  const child = spawn(process.execPath, argv, { env, detached: true, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done: number | null | undefined;
  void exited.then((c) => (done = c));
  const deadline = Date.now() + 180_000;
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

/** A rule `times: 1` was consumed: the run is inside that call. */
export function consumed(host: SimHost): boolean {
  let inj: Injection;
  try {
    inj = JSON.parse(fs.readFileSync(path.join(host.stateDir, 'inject.json'), 'utf8')) as Injection;
  } catch {
    return false;
  }
  return [...(inj.failures ?? []), ...(inj.exec ?? []), ...(inj.slow ?? [])].some((r) => r.times === 0);
}

const HOLD = 600_000;
/** The call is held before it does anything. */
export const holdCall = (tool: string, argv: string[]): Injection => ({ failures: [{ tool, argv, times: 1, delay_ms: HOLD, exit: 1, stderr: 'held\n' }] });
/** The Proxmox task runs its first half (the lock mark and what it prepares), then is held. */
export const holdTask = (tool: string, argv: string[]): Injection => ({ slow: [{ tool, argv, times: 1, latency_ms: HOLD }] });
/** A command in a guest is held. */
export const holdGuest = (rule: ExecRule): Injection => ({ exec: [{ ...rule, times: 1, duration_ms: HOLD, exit: 1 }], time_scale: 1 });
