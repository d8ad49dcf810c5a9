// `make bench`: what a ported script costs to start and how many processes it
// spawns, against a bash + jq script doing the same configuration reads the
// way the bash toolkit does them (upstream_style_resolve.sh).
//
// Both sides run against the same stub `pct`/`qm` (one tiny shell script
// each), so the figures measure the scripts, not the simulated host.
// Results are printed as a table; nothing here is asserted: speed is
// measured, not tested.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const runs = Number(process.env.BENCH_RUNS ?? 15);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-bench-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

const bin = path.join(work, 'bin');
fs.mkdirSync(bin);
for (const tool of ['pct', 'qm']) {
  fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "Configuration file 'nodes/pve/$2.conf' does not exist" >&2\nexit 2\n`, { mode: 0o755 });
}

const env = {
  ...process.env,
  PATH: `${bin}:${process.env.PATH}`,
  PHOENIX_BASE_DIR: root,
  HYPERVISOR_CONFIG_FILE: path.join(root, 'etc', 'phoenix_hypervisor_config.json'),
  LXC_CONFIG_FILE: path.join(root, 'etc', 'phoenix_lxc_configs.json'),
  VM_CONFIG_FILE: path.join(root, 'etc', 'phoenix_vm_configs.json'),
  PHOENIX_LEGACY_DIR: path.join(root, 'test', 'fixtures', 'legacy'),
  // The managers are pinned to the stand-ins, which a dry-run prints instead
  // of running: the figures are the CLI's own work against the bash CLI's.
  PHOENIX_USE_LEGACY: 'managers/lxc-manager.sh managers/vm-manager.sh managers/portainer-manager.sh',
  MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
  PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
};

const cli = path.join(root, 'scripts', 'phoenix-cli.mjs');
const cliSource = path.join(root, 'scripts', 'phoenix-cli.mts');
const baseline = path.join(here, 'upstream_style_resolve.sh');
const nodeRunsTs = Boolean((process.features as { typescript?: unknown }).typescript);
const allIds = (() => {
  const lxc = JSON.parse(fs.readFileSync(env.LXC_CONFIG_FILE, 'utf8')) as { lxc_configs: Record<string, unknown> };
  const vm = JSON.parse(fs.readFileSync(env.VM_CONFIG_FILE, 'utf8')) as { vms: Array<{ vmid: number }> };
  return [...Object.keys(lxc.lxc_configs).sort(), ...vm.vms.map((v) => String(v.vmid))];
})();

interface Case {
  name: string;
  ours: string[];
  bash: string[];
}

const cases: Case[] = [
  { name: 'start-up (--help)', ours: [process.execPath, cli, '--help'], bash: ['bash', baseline, '--help'] },
  { name: 'plan create 102', ours: [process.execPath, cli, '--dry-run', 'create', '102'], bash: ['bash', baseline, '102'] },
  { name: `plan all ${allIds.length} guests`, ours: [process.execPath, cli, '--dry-run', 'LetsGo'], bash: ['bash', baseline, ...allIds] },
];

function time(argv: string[]): { medianMs: number; minMs: number; ok: boolean } {
  const samples: number[] = [];
  let ok = true;
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    const r = spawnSync(argv[0] as string, argv.slice(1), { env, stdio: 'ignore' });
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (r.status !== 0) ok = false;
  }
  samples.sort((a, b) => a - b);
  return { medianMs: samples[Math.floor(samples.length / 2)] as number, minMs: samples[0] as number, ok };
}

/** Processes started (successful execve calls), counted with strace when present. */
function processes(argv: string[]): number | undefined {
  const probe = spawnSync('strace', ['-V'], { stdio: 'ignore' });
  if (probe.status !== 0) return undefined;
  const out = path.join(work, 'strace.out');
  spawnSync('strace', ['-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-o', out, ...argv], { env, stdio: 'ignore' });
  const lines = fs.readFileSync(out, 'utf8').split('\n');
  return lines.filter((l) => l.includes('execve(') && !/= -1 /.test(l) && !l.includes('<unfinished')).length + lines.filter((l) => /execve resumed>.*= 0$/.test(l)).length;
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const rows: string[][] = [['case', 'phoenix (.mjs)', 'bash + jq', 'ratio', 'processes phoenix / bash']];
for (const c of cases) {
  const ours = time(c.ours);
  const bash = time(c.bash);
  const po = processes(c.ours);
  const pb = processes(c.bash);
  rows.push([
    c.name + (ours.ok && bash.ok ? '' : ' (a run failed!)'),
    fmt(ours.medianMs),
    fmt(bash.medianMs),
    `${(bash.medianMs / ours.medianMs).toFixed(2)}x`,
    po === undefined || pb === undefined ? 'n/a (no strace)' : `${po} / ${pb}`,
  ]);
}
if (nodeRunsTs) {
  const direct = time([process.execPath, cliSource, '--help']);
  rows.push(['start-up, .mts run directly', fmt(direct.medianMs), '', '', '']);
} else {
  rows.push([`start-up, .mts run directly`, `n/a: Node ${process.versions.node} has no type stripping (needs >= 22.18)`, '', '', '']);
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
console.log(`Phoenix bench: median of ${runs} runs, Node ${process.versions.node}, ${os.cpus().length} cores`);
for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  '));

// ---------------------------------------------------------------- start-up against bare node

/**
 * Each script against `node -e 0`, run in turn (A B A B …) so both see the
 * same machine; the ratio is taken pair by pair and its median quoted.
 */
function againstNode(argv: string[], runEnv: NodeJS.ProcessEnv): { ratio: number; oursMs: number; nodeMs: number; ok: boolean } {
  const bare = [process.execPath, '-e', '0'];
  const once = (cmd: string[]) => {
    const started = process.hrtime.bigint();
    const r = spawnSync(cmd[0] as string, cmd.slice(1), { env: runEnv, stdio: 'ignore' });
    return { ms: Number(process.hrtime.bigint() - started) / 1e6, ok: r.status === 0 };
  };
  once(argv);
  once(bare);
  const ratios: number[] = [];
  const ours: number[] = [];
  const node: number[] = [];
  let ok = true;
  for (let i = 0; i < Math.max(runs, 15); i++) {
    const a = once(argv);
    const b = once(bare);
    ok &&= a.ok;
    ours.push(a.ms);
    node.push(b.ms);
    ratios.push(a.ms / b.ms);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  return { ratio: median(ratios), oursMs: median(ours), nodeMs: median(node), ok };
}

const generatorBase = fs.mkdtempSync(path.join(work, 'generator-'));
fs.cpSync(path.join(root, 'etc'), path.join(generatorBase, 'etc'), { recursive: true });
const generatorEnv = { ...process.env, PHOENIX_BASE_DIR: generatorBase, MAIN_LOG_FILE: path.join(work, 'generator.log'), PHOENIX_LOCK_FILE: path.join(work, 'generator.lock') };
for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'STACKS_CONFIG_FILE', 'CERTIFICATE_MANIFEST_FILE']) delete (generatorEnv as Record<string, string | undefined>)[key];
const startup = [
  { name: 'lxc-manager --help', argv: [process.execPath, path.join(root, 'scripts', 'managers', 'lxc-manager.mjs'), '--help'], env, target: 1.6 },
  { name: 'generate_traefik_config (example manifests)', argv: [process.execPath, path.join(root, 'scripts', 'generate_traefik_config.mjs')], env: generatorEnv, target: 1.8 },
];
const startRows: string[][] = [['start-up against bare node', 'script', 'node -e 0', 'ratio (median of pairs)', 'target']];
for (const s of startup) {
  const m = againstNode(s.argv, s.env);
  startRows.push([s.name + (m.ok ? '' : ' (a run failed!)'), fmt(m.oursMs), fmt(m.nodeMs), `${m.ratio.toFixed(2)}x`, `<= ${s.target}x`]);
}
console.log('');
const startWidths = startRows[0]!.map((_, i) => Math.max(...startRows.map((r) => (r[i] ?? '').length)));
for (const r of startRows) console.log(r.map((cell, i) => cell.padEnd(startWidths[i] ?? 0)).join('  '));

// ---------------------------------------------------------------- processes per create 103

/**
 * `phoenix create 103` on a fresh simulated host (its template CT 900 made
 * first): the processes that ran a program (distinct pids with a successful
 * execve) and the execve calls, counted with strace. zx starts each command
 * through bash, which execs it in place: one more execve per command, the
 * same number of processes.
 */
async function create103Processes(): Promise<string> {
  if (spawnSync('strace', ['-V'], { stdio: 'ignore' }).status !== 0) return 'n/a (no strace)';
  const { createSimHost } = await import('../simhost/index.mts');
  const { cliEnv } = await import('../helpers/run-phoenix.mts');
  const host = createSimHost();
  try {
    const simWork = fs.mkdtempSync(path.join(work, 'create103-'));
    const simBase = path.join(simWork, 'base');
    fs.cpSync(path.join(root, 'etc'), path.join(simBase, 'etc'), { recursive: true });
    const simEnv = cliEnv(host, simWork, simBase, { PHOENIX_RECORD: path.join(simWork, 'record.jsonl') });
    if (spawnSync(process.execPath, [cli, 'create', '900'], { env: simEnv, stdio: 'ignore' }).status !== 0) return 'n/a (create 900 failed)';
    fs.rmSync(path.join(simWork, 'record.jsonl'), { force: true });
    const out = path.join(simWork, 'strace.out');
    const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=execve', '-o', out, process.execPath, cli, 'create', '103'], { env: simEnv, stdio: 'ignore' });
    if (r.status !== 0) return 'n/a (create 103 failed)';
    const execs = fs.readFileSync(out, 'utf8').split('\n').filter((l) => (/execve\(/.test(l) && / = 0$/.test(l)) || /execve resumed>.* = 0$/.test(l));
    const commands = fs.readFileSync(path.join(simWork, 'record.jsonl'), 'utf8').trim().split('\n').length;
    return `${new Set(execs.map((l) => l.split(' ')[0])).size} processes, ${execs.length} execve, ${commands} commands recorded`;
  } finally {
    host.dispose();
  }
}
console.log('');
console.log(`create 103 on the simulated host: ${await create103Processes()}`);
