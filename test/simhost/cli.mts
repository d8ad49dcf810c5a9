// Entry point of every simulated tool: `node cli.mjs <tool> <args…>`, run by
// the shims in bin/. One call is one short process, so this file stays
// small, imports only node built-ins and the simulator's own modules, and
// loads the code of the one tool it runs.
//
// The order of a call: state dir check (exit 2 without one) → injected
// failure (inject.json) → the tool, which parses its arguments, takes the
// guest's config lock where PVE would, waits the injected latency, and
// changes state under the state lock → one line in calls.jsonl.

import fs from 'node:fs';
import path from 'node:path';

import { failureOutput, guestLockPath, latencyFor, loadInjection, lockTimeoutMs, takeFailure, takeSlow, type Injection } from './inject.mts';
import { appendCall } from './record.mts';
import { acquireLock, paths, readHost, readStdinSync, sleepSync, stateRoot, ToolExit, writeAll, type GuestKind, type HostInfo } from './state.mts';

export interface LockSpec {
  kind: GuestKind;
  vmid: string;
}

export interface Ctx {
  tool: string;
  argv: string[];
  root: string;
  host: HostInfo;
  injection: Injection;
  out(text: string): void;
  err(text: string): void;
  /** stdin, read once; reading it makes the call record its byte count. */
  stdin(): Buffer;
  /**
   * Start the effectful part: take the guests' config locks (as PVE's
   * lock_config does, with its time-out and messages), then wait the
   * injected latency while holding them.
   */
  begin(locks?: LockSpec[]): void;
  /**
   * Take one guest's config lock (flock) for a short step; PVE's two-phase
   * tasks (clone, snapshot) hold it only while they read and write the
   * config and mark the guest with a `lock:` property in between.
   */
  lockGuest(lock: LockSpec): () => void;
  /** Resolve a (possibly abbreviated) verb the way the PVE CLI handler does. */
  verb(word: string | undefined, simulated: readonly string[], notSimulated?: readonly string[]): string;
  unknownCommand(word: string, simulated: readonly string[], notSimulated?: readonly string[]): never;
}

const tools: Record<string, () => Promise<(ctx: Ctx) => void>> = {
  pct: async () => (await import('./pct.mts')).runPct,
  qm: async () => (await import('./qm.mts')).runQm,
  pvesm: async () => (await import('./storage.mts')).runPvesm,
  pveam: async () => (await import('./storage.mts')).runPveam,
  pvesh: async () => (await import('./pvesh.mts')).runPvesh,
  'pve-firewall': async () => (await import('./firewall.mts')).runFirewall,
  zfs: async () => (await import('./zfs.mts')).runZfs,
  zpool: async () => (await import('./zfs.mts')).runZpool,
  lsblk: async () => (await import('./disks.mts')).runLsblk,
  blkid: async () => (await import('./disks.mts')).runBlkid,
  wipefs: async () => (await import('./disks.mts')).runWipefs,
};



function expandVerb(word: string, all: readonly string[]): string | undefined {
  if (all.includes(word)) return word;
  const matches = all.filter((v) => v.startsWith(word));
  return matches.length === 1 ? matches[0] : undefined;
}

export async function main(argv: string[]): Promise<number> {
  const [tool = '', ...args] = argv;
  const started = Date.now();
  const stdout: string[] = [];
  const stderr: string[] = [];
  let exit = 0;
  let root: string | undefined;
  let stdinBuf: Buffer | undefined;
  let latencyDone = false;
  let injection: Injection = {};
  const held: Array<() => void> = [];

  const sleepLatency = () => {
    if (latencyDone || root === undefined) return;
    latencyDone = true;
    sleepSync(takeSlow(root, injection, tool, args) ?? latencyFor(injection, tool));
  };

  try {
    const loader = tools[tool];
    if (!loader) throw new ToolExit(2, `simhost: unknown tool '${tool}' (known: ${Object.keys(tools).join(', ')})\n`);
    root = stateRoot();
    injection = loadInjection(root);

    const failure = takeFailure(root, injection, tool, args);
    if (failure) {
      const result = failureOutput(failure, tool, args);
      sleepLatency();
      sleepSync(failure.delay_ms ?? 0);
      throw new ToolExit(result.exit, result.stderr, result.stdout);
    }

    const ctx: Ctx = {
      tool,
      argv: args,
      root,
      host: readHost(root),
      injection,
      out: (text) => void stdout.push(text),
      err: (text) => void stderr.push(text),
      stdin: () => (stdinBuf ??= readStdinSync()),
      begin: (locks = []) => {
        const sorted = [...locks].sort((a, b) => Number(a.vmid) - Number(b.vmid));
        for (const lock of sorted) ctx.lockGuest(lock);
        sleepLatency();
      },
      lockGuest: (lock) => {
        const file = path.join(
          paths(root!).guestLockDir,
          lock.kind === 'lxc' ? `lxc/pve-config-${lock.vmid}.lock` : `qemu-server/lock-${lock.vmid}.conf`,
        );
        let contended = false;
        const release = acquireLock(file, {
          timeoutMs: lockTimeoutMs(injection),
          onContention: () => {
            contended = true;
            stderr.push('trying to acquire lock...\n');
          },
        });
        if (!release) {
          throw new ToolExit(255, `can't lock file '${guestLockPath(lock.kind === 'lxc' ? 'pct' : 'qm', lock.vmid)}' - got timeout\n`);
        }
        if (contended) stderr.push(' OK\n');
        let released = false;
        const once = () => {
          if (released) return;
          released = true;
          release();
        };
        held.push(once);
        return once;
      },
      verb: (word, simulated, notSimulated = []) => {
        const resolved = word === undefined ? undefined : expandVerb(word, [...simulated, ...notSimulated, 'help']);
        if (resolved === undefined) return ctx.unknownCommand(word ?? '', simulated, notSimulated);
        if (resolved === 'help') {
          throw new ToolExit(0, '', `USAGE: ${tool} <COMMAND> [ARGS] [OPTIONS]\n${simulated.map((v) => `       ${tool} ${v}\n`).join('')}`);
        }
        if (notSimulated.includes(resolved)) throw new ToolExit(255, `simhost: '${tool} ${resolved}' is not simulated\n`);
        return resolved;
      },
      unknownCommand: (word, simulated) => {
        const reason = word === '' ? 'no command specified' : `unknown command '${tool} ${word}'`;
        let text = `ERROR: ${reason}\nUSAGE: ${tool} <COMMAND> [ARGS] [OPTIONS]\n\n`;
        for (const v of [...simulated].sort()) text += `       ${tool} ${v}\n`;
        throw new ToolExit(255, text);
      },
    };

    const run = await loader();
    run(ctx);
  } catch (error) {
    if (error instanceof ToolExit) {
      if (error.stdout) stdout.push(error.stdout);
      if (error.stderr) stderr.push(error.stderr);
      exit = error.code;
    } else {
      stderr.push(`simhost: internal error in ${tool}: ${(error as Error).stack ?? String(error)}\n`);
      // Kept next to the state too: a wrapper may swallow stderr, and a simulator bug must not hide.
      if (root !== undefined) {
        try {
          fs.appendFileSync(path.join(root, 'simhost-errors.log'), `${new Date().toISOString()} ${tool} ${JSON.stringify(args)}: ${(error as Error).stack ?? String(error)}\n`);
        } catch {
          // nothing more we can do
        }
      }
      exit = 70;
    }
  } finally {
    sleepLatency();
    for (const release of held.reverse()) release();
  }

  writeAll(1, stdout.join(''));
  writeAll(2, stderr.join(''));
  if (root !== undefined) {
    appendCall(root, {
      tool,
      argv: args,
      exit,
      ms: Date.now() - started,
      start: started,
      ...(stdinBuf !== undefined ? { stdin_bytes: stdinBuf.length } : {}),
    });
  }
  return exit;
}

const invokedDirectly = process.argv[1] !== undefined && /[\\/]cli\.m[jt]s$/.test(process.argv[1]);
if (invokedDirectly) {
  process.exitCode = await main(process.argv.slice(2));
}
