// `make bench`, second part: LetsGo (every guest created and started, then
// `sync all`) on the simulated host with injected Proxmox latency, as `make
// sync` runs it: every manager, feature and application script is the port,
// the base directory is a copy of etc/, Portainer's API is the stand-in on
// 127.0.0.1. Reports the wall time with guests in parallel waves and one at a
// time, against the dependency critical path (the longest chain of guest
// creations, each taking what it took in the serial run, plus the start and
// sync phases), the Proxmox calls per guest, and what an unchanged second
// `sync all` costs.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { guestGraph, allGuestIds } from '../../lib/config/guests.mts';
import { resolveOrder } from '../../lib/config/graph.mts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const latencyMs = Number(process.env.BENCH_LATENCY_MS ?? 100);
const ported = ['lxc-manager', 'vm-manager'].every((m) => fs.existsSync(path.join(root, 'scripts', 'managers', `${m}.mjs`)));
if (!ported) {
  console.log('LetsGo bench: skipped (lxc-manager and vm-manager are not both ported)');
  process.exit(0);
}

/** The Portainer API stand-in as its own process (LetsGo runs synchronously here). */
async function startStandin(dir: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, [path.join(root, 'test', 'portainer-standin', 'server.mjs'), '--port', '0', '--max-lifetime', '900', '--state', path.join(dir, 'portainer.json')], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the Portainer stand-in did not start')), 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /^listening (\S+)/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { url, stop: () => void child.kill() };
}

interface Run {
  wallMs: number;
  calls: CallRecord[];
  code: number;
  /** The CLI's own record: one entry per manager run, with its duration. */
  steps: Array<{ verb: string; id: string; ms: number }>;
  /** A second `sync all` on the unchanged host: wall time and Proxmox calls. */
  resync: { wallMs: number; calls: number; code: number };
}

async function letsGo(parallel: number): Promise<Run> {
  const host = createSimHost();
  host.setLatency({ pct: latencyMs, qm: latencyMs });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-bench-letsgo-'));
  fs.cpSync(path.join(root, 'etc'), path.join(work, 'base', 'etc'), { recursive: true });
  const standin = await startStandin(work);
  const env = {
    ...host.env,
    PHOENIX_BASE_DIR: path.join(work, 'base'),
    MAIN_LOG_FILE: path.join(work, 'log'),
    PHOENIX_LOCK_FILE: path.join(work, 'lock'),
    PHOENIX_PARALLEL: String(parallel),
    PHOENIX_START_RETRY_DELAY_MS: '100',
    PHOENIX_POLL_INTERVAL_MS: '100',
    PHOENIX_SKIP_GUEST_VERIFY: 'true',
    PHOENIX_PORTAINER_URL: standin.url,
    NO_SPINNER: '1',
    PHOENIX_RECORD: path.join(work, 'record.jsonl'),
  };
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'phoenix-cli.mjs'), 'LetsGo'], { env, stdio: 'ignore' });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const calls = host.calls();
  const resyncStarted = process.hrtime.bigint();
  const again = spawnSync(process.execPath, [path.join(root, 'scripts', 'phoenix-cli.mjs'), 'sync', 'all'], { env: { ...env, PHOENIX_RECORD: path.join(work, 'resync.jsonl') }, stdio: 'ignore' });
  const resync = { wallMs: Number(process.hrtime.bigint() - resyncStarted) / 1e6, calls: host.calls().length - calls.length, code: again.status ?? -1 };
  standin.stop();
  const steps = fs
    .readFileSync(env.PHOENIX_RECORD, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { script: string; args: string[]; ms: number })
    .filter((r) => r.script === 'phoenix-cli' && /managers\/\w+-manager\.m[jt]s$/.test(r.args[0] ?? ''))
    .map((r) => ({ verb: r.args[1] ?? '', id: r.args[2] ?? '', ms: r.ms }));
  host.dispose();
  fs.rmSync(work, { recursive: true, force: true });
  return { wallMs, calls, code: r.status ?? -1, steps, resync };
}

const config = loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: root }));
const graph = guestGraph(config);
const ids = resolveOrder(graph, allGuestIds(config));

const serial = await letsGo(1);
const parallel = await letsGo(4);

// The critical path: the longest dependency chain of creates (each taking
// what it took in the serial run), plus the start phase, which runs in boot
// order one guest at a time by design, and the closing sync.
const createMs = new Map(serial.steps.filter((s) => s.verb === 'create').map((s) => [s.id, s.ms]));
const longest = new Map<string, number>();
for (const id of ids) {
  const deps = graph.get(id)?.edges ?? [];
  longest.set(id, (createMs.get(id) ?? 0) + Math.max(0, ...deps.map((d) => longest.get(d) ?? 0)));
}
const startMs = serial.steps.filter((s) => s.verb !== 'create').reduce((sum, s) => sum + s.ms, 0);
const criticalMs = Math.max(...longest.values()) + startMs;
console.log(`\nLetsGo on the simulated host, ${latencyMs} ms per pct/qm call, ${ids.length} guests`);
console.log(`  one guest at a time : ${(serial.wallMs / 1000).toFixed(1)} s${serial.code ? ` (exit ${serial.code}!)` : ''}`);
console.log(`  parallel waves (4)  : ${(parallel.wallMs / 1000).toFixed(1)} s${parallel.code ? ` (exit ${parallel.code}!)` : ''}`);
console.log(`  critical path       : ${(criticalMs / 1000).toFixed(1)} s (longest chain of creates, with the serial run's times, plus the start phase)`);
console.log(`  parallel / critical : ${(parallel.wallMs / criticalMs).toFixed(2)}x`);
const syncMs = serial.steps.filter((s) => s.verb === 'sync').reduce((sum, s) => sum + s.ms, 0);
console.log(`  of which sync all   : ${(syncMs / 1000).toFixed(1)} s (serial run, first sync)`);
console.log(`  unchanged sync all  : ${(parallel.resync.wallMs / 1000).toFixed(1)} s, ${parallel.resync.calls} simulated-tool calls${parallel.resync.code ? ` (exit ${parallel.resync.code}!)` : ''}`);
console.log('  per guest (serial run): create time, and Proxmox calls naming the guest');
console.log('    (the bash lxc-manager create of a clone such as 103 makes 34 pct calls, counted along its create workflow, plus one jq per key read)');
for (const id of ids) {
  const n = serial.calls.filter((c) => (c.tool === 'pct' || c.tool === 'qm') && c.argv[1] === id).length;
  console.log(`    ${id.padEnd(5)} ${((createMs.get(id) ?? 0) / 1000).toFixed(1).padStart(5)} s ${String(n).padStart(4)} calls`);
}
