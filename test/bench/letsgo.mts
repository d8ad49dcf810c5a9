// `make bench`, second part: LetsGo on the simulated host with injected
// Proxmox latency. Reports the wall time with guests in parallel waves and
// one at a time, against the dependency critical path (the longest chain of
// guest creations, each taking what it took in the serial run), and the
// Proxmox calls per guest. The managers, the firewall generator and the
// orchestration are the ports; the features and the CT application scripts
// are the stand-ins of test/fixtures/legacy (the simulated guests run
// nothing, so the ported features could not get past their own checks), and
// the certificate manager is absent.

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

const fixtureBin = path.join(root, 'test', 'fixtures', 'legacy', 'bin');
const standIns = ['lxc_setup', 'vm_features']
  .flatMap((dir) => fs.readdirSync(path.join(fixtureBin, dir)).filter((f) => /^(phoenix_hypervisor_feature_|feature_)/.test(f)).map((f) => `${dir}/${f}`))
  .concat(['101', '102', '103'].map((id) => `phoenix_hypervisor_lxc_${id}.sh`));

interface Run {
  wallMs: number;
  calls: CallRecord[];
  code: number;
  /** The CLI's own record: one entry per manager run, with its duration. */
  steps: Array<{ verb: string; id: string; ms: number }>;
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
    PHOENIX_LEGACY_DIR: path.join(root, 'test', 'fixtures', 'legacy'),
    PHOENIX_USE_LEGACY: standIns.join(' '),
    PHOENIX_RECORD: path.join(work, 'record.jsonl'),
  };
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'phoenix-cli.mjs'), 'LetsGo'], { env, stdio: 'ignore' });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const calls = host.calls();
  const steps = fs
    .readFileSync(env.PHOENIX_RECORD, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { script: string; args: string[]; ms: number })
    .filter((r) => r.script === 'phoenix-cli' && /managers\/\w+-manager\.m[jt]s$/.test(r.args[0] ?? ''))
    .map((r) => ({ verb: r.args[1] ?? '', id: r.args[2] ?? '', ms: r.ms }));
  host.dispose();
  fs.rmSync(work, { recursive: true, force: true });
  return { wallMs, calls, code: r.status ?? -1, steps };
}

const config = loadConfig(resolveConfigPaths({}, { PHOENIX_BASE_DIR: root }));
const graph = guestGraph(config);
const ids = resolveOrder(graph, allGuestIds(config));

const serial = letsGo(1);
const parallel = letsGo(4);

// The critical path: the longest dependency chain of creates (each taking
// what it took in the serial run), plus the start phase, which runs in boot
// order one guest at a time by design.
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
console.log('  per guest (serial run): create time, and Proxmox calls naming the guest');
console.log('    (the bash lxc-manager create of a clone such as 103 makes 34 pct calls by its own count in spec §5.2, plus one jq per key read)');
for (const id of ids) {
  const n = serial.calls.filter((c) => (c.tool === 'pct' || c.tool === 'qm') && c.argv[1] === id).length;
  console.log(`    ${id.padEnd(5)} ${((createMs.get(id) ?? 0) / 1000).toFixed(1).padStart(5)} s ${String(n).padStart(4)} calls`);
}
