// `make bench`, second part: LetsGo on the simulated host with injected
// Proxmox latency. Reports the wall time with guests in parallel waves and
// one at a time, against the dependency critical path (the longest chain of
// guest creations, each taking what it took in the serial run), and the
// Proxmox calls and processes per guest.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSimHost, type CallRecord } from '../simhost/index.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config.mts';
import { guestGraph, allGuestIds } from '../../lib/guests.mts';
import { resolveOrder } from '../../lib/graph.mts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const latencyMs = Number(process.env.BENCH_LATENCY_MS ?? 100);
const ported = ['lxc-manager', 'vm-manager'].every((m) => fs.existsSync(path.join(root, 'scripts', 'managers', `${m}.mjs`)));
if (!ported) {
  console.log('LetsGo bench: skipped (lxc-manager and vm-manager are not both ported)');
  process.exit(0);
}

interface Run {
  wallMs: number;
  calls: CallRecord[];
  code: number;
}

function letsGo(parallel: number): Run {
  const host = createSimHost();
  host.setLatency({ pct: latencyMs, qm: latencyMs });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-bench-letsgo-'));
  const env = {
    ...host.env,
    PHOENIX_BASE_DIR: root,
    MAIN_LOG_FILE: path.join(work, 'log'),
    PHOENIX_LOCK_FILE: path.join(work, 'lock'),
    PHOENIX_PARALLEL: String(parallel),
    PHOENIX_START_RETRY_DELAY_MS: '100',
    PHOENIX_POLL_INTERVAL_MS: '100',
  };
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'phoenix-cli.mjs'), 'LetsGo'], { env, stdio: 'ignore' });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const calls = host.calls();
  host.dispose();
  fs.rmSync(work, { recursive: true, force: true });
  return { wallMs, calls, code: r.status ?? -1 };
}

const config = loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: root }));
const graph = guestGraph(config);
const ids = resolveOrder(graph, allGuestIds(config));

const serial = letsGo(1);
const parallel = letsGo(4);

// Per guest: the span of the calls that name it, in the serial run.
const span = new Map<string, number>();
for (const id of ids) {
  const mine = serial.calls.filter((c) => (c.tool === 'pct' || c.tool === 'qm') && c.argv.includes(id));
  if (mine.length === 0) continue;
  const first = Math.min(...mine.map((c) => c.start ?? 0));
  const last = Math.max(...mine.map((c) => c.start + c.ms));
  span.set(id, last - first);
}
const longest = new Map<string, number>();
for (const id of ids) {
  const deps = graph.get(id)?.edges ?? [];
  longest.set(id, (span.get(id) ?? 0) + Math.max(0, ...deps.map((d) => longest.get(d) ?? 0)));
}
const criticalMs = Math.max(...longest.values());

console.log(`\nLetsGo on the simulated host, ${latencyMs} ms per pct/qm call, ${ids.length} guests`);
console.log(`  one guest at a time : ${(serial.wallMs / 1000).toFixed(1)} s${serial.code ? ` (exit ${serial.code}!)` : ''}`);
console.log(`  parallel waves (4)  : ${(parallel.wallMs / 1000).toFixed(1)} s${parallel.code ? ` (exit ${parallel.code}!)` : ''}`);
console.log(`  critical path       : ${(criticalMs / 1000).toFixed(1)} s (longest dependency chain, guest times from the serial run)`);
console.log(`  parallel / critical : ${(parallel.wallMs / criticalMs).toFixed(2)}x`);
console.log('  Proxmox calls per guest (serial run):');
for (const id of ids) {
  const n = serial.calls.filter((c) => (c.tool === 'pct' || c.tool === 'qm') && c.argv.includes(id)).length;
  console.log(`    ${id.padEnd(5)} ${String(n).padStart(4)} calls (${(span.get(id) ?? 0) / 1000} s)`);
}
