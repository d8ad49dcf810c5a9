// The test-facing API of the simulated Proxmox host. A test creates one,
// puts `env` on the commands it runs (PATH with the simulated pct/qm/…
// first, PHOENIX_SIM_STATE, PHOENIX_PVE_DIR) and inspects what happened:
// recorded calls, guest configs, guest files, runtime state.
//
//   const host = createSimHost();
//   host.run('pct', ['start', '101']);            // or spawn with host.env
//   host.calls().map((c) => c.argv.join(' '));
//   host.dispose();

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { guestFsDir } from './guestfs.mts';
import { loadInjection, saveInjection, type ExecRule, type FailureRule, type Injection } from './inject.mts';
import { configPath, readConfigFile, type GuestConfig } from './pveconf.mts';
import { readCalls, type CallRecord } from './record.mts';
import { seedState, type SeedOptions } from './seed.mts';
import { loadRuntime, paths, STATE_ENV, type GuestKind, type Runtime } from './state.mts';

export type { CallRecord } from './record.mts';
export type { ExecRule, FailureRule, Injection } from './inject.mts';
export type { GuestConfig, Section } from './pveconf.mts';
export type { SeedOptions, DatasetSpec, PoolSpec, FileSpec } from './seed.mts';
export type { Runtime } from './state.mts';
export { DEFAULT_CLOUD_IMAGE, DEFAULT_TEMPLATE, PVE_SUBORDINATE_IDS, seedState, seedSubordinateIds } from './seed.mts';
export { parseConfig, serializeConfig } from './pveconf.mts';
export { readCalls } from './record.mts';
export { lockTimeoutMessage } from './inject.mts';

/** The directory holding the pct/qm/… shims. */
export const BIN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bin');

/** The simulated tools, as named on a real host. */
export const TOOLS = ['pct', 'qm', 'pvesm', 'pveam', 'pvesh', 'pve-firewall', 'zfs', 'zpool', 'lsblk', 'blkid', 'wipefs'] as const;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
}

export interface SimHost {
  /** The state directory ($PHOENIX_SIM_STATE). */
  readonly stateDir: string;
  /** The shims' directory, to put first on PATH. */
  readonly binDir: string;
  /** process.env plus PATH (binDir first), PHOENIX_SIM_STATE and PHOENIX_PVE_DIR. */
  readonly env: Record<string, string>;
  /** Recorded calls, oldest first; optionally only those of one tool. */
  calls(tool?: string): CallRecord[];
  /** Forget the recorded calls (e.g. after setting a scene). */
  clearCalls(): void;
  /** A guest's parsed config file, or undefined when it has none. */
  readConfig(kind: GuestKind, vmid: number | string): GuestConfig | undefined;
  /** A guest's config file as text (what `cat /etc/pve/lxc/<id>.conf` shows). */
  readConfigText(kind: GuestKind, vmid: number | string): string | undefined;
  /** Host path of a file inside a guest's tree (for pushing fixtures or checking results). */
  guestPath(vmid: number | string, guestPath: string): string;
  /** The runtime state (run states, storage contents, ZFS). */
  runtime(): Runtime;
  /** Replace inject.json. */
  setInjection(injection: Injection): void;
  /** Read-modify-write inject.json. */
  updateInjection(fn: (injection: Injection) => void): void;
  /** Append a failure rule. */
  injectFailure(rule: FailureRule): void;
  /** Make the next `times` calls of `tool argv…` fail with Proxmox's config-lock time-out. */
  injectLockTimeout(tool: 'pct' | 'qm', argv: string[], times?: number): void;
  /** Script the answer of a command run inside a guest (pct exec / qm guest exec). */
  injectExec(rule: ExecRule): void;
  /** Per-tool latency in ms ("*" for every tool). */
  setLatency(latency: Record<string, number>): void;
  /** Run a simulated tool synchronously with this host's environment. */
  run(tool: string, args: string[], options?: RunOptions): RunResult;
  /** Run a simulated tool asynchronously (for parallel callers). */
  runAsync(tool: string, args: string[], options?: RunOptions): Promise<RunResult>;
  /** Wipe everything and seed again with the same options. */
  reset(): void;
  /** Remove the state directory if createSimHost made it. */
  dispose(): void;
}

/**
 * Create (or reuse) a simulated host. Without `dir` a fresh temporary
 * directory is used and removed by dispose(); with `dir`, an existing
 * state is kept (seeding is idempotent) unless `options.reset` is set.
 */
export function createSimHost(dir?: string, options: SeedOptions & { reset?: boolean } = {}): SimHost {
  const owned = dir === undefined;
  const stateDir = path.resolve(dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-simhost-')));
  // A temporary state goes with the process even when a test forgets dispose().
  if (owned && !process.env.KEEP_TEST_DIRS) process.once('exit', () => fs.rmSync(stateDir, { recursive: true, force: true }));
  const { reset: resetFirst, ...seedOptions } = options;
  seedState(stateDir, seedOptions, { reset: resetFirst === true });
  const p = paths(stateDir);

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.PATH = `${BIN_DIR}${path.delimiter}${process.env.PATH ?? ''}`;
  env[STATE_ENV] = stateDir;
  env.PHOENIX_PVE_DIR = p.pve;

  const toolPath = (tool: string) => path.join(BIN_DIR, tool);
  const updateInjection = (fn: (injection: Injection) => void) => {
    const injection = loadInjection(stateDir);
    fn(injection);
    saveInjection(stateDir, injection);
  };

  return {
    stateDir,
    binDir: BIN_DIR,
    env,
    calls: (tool) => readCalls(stateDir).filter((c) => tool === undefined || c.tool === tool),
    clearCalls: () => fs.writeFileSync(p.callsFile, ''),
    readConfig: (kind, vmid) => readConfigFile(stateDir, kind, String(vmid)),
    readConfigText: (kind, vmid) => {
      try {
        return fs.readFileSync(configPath(stateDir, kind, String(vmid)), 'utf8');
      } catch {
        return undefined;
      }
    },
    guestPath: (vmid, guestPath) => path.join(guestFsDir(stateDir, String(vmid)), path.posix.resolve('/', guestPath)),
    runtime: () => loadRuntime(stateDir),
    setInjection: (injection) => saveInjection(stateDir, injection),
    updateInjection,
    injectFailure: (rule) => updateInjection((inj) => void (inj.failures ??= []).push(rule)),
    injectLockTimeout: (tool, argv, times = 1) =>
      updateInjection((inj) => void (inj.failures ??= []).push({ tool, argv, times, preset: 'lock-timeout' })),
    injectExec: (rule) => updateInjection((inj) => void (inj.exec ??= []).push(rule)),
    setLatency: (latency) => updateInjection((inj) => void (inj.latency = latency)),
    run: (tool, args, options = {}) => {
      const result = spawnSync(toolPath(tool), args, {
        env: { ...env, ...options.env },
        input: options.input ?? '',
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      if (result.error) throw result.error;
      return { code: result.status ?? 128, stdout: result.stdout, stderr: result.stderr };
    },
    runAsync: (tool, args, options = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn(toolPath(tool), args, { env: { ...env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr }));
        child.stdin.end(options.input ?? '');
      }),
    reset: () => {
      seedState(stateDir, seedOptions, { reset: true });
    },
    dispose: () => {
      if (owned) fs.rmSync(stateDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    },
  };
}

/** A failure rule for Proxmox's config-lock time-out (what the runner retries on). */
export function lockTimeoutRule(tool: 'pct' | 'qm', argv: string[], times = 1): FailureRule {
  return { tool, argv, times, preset: 'lock-timeout' };
}

