// Where the simulated host keeps its state, and how several simulator
// processes share it. Every tool call is its own short-lived process and
// guests are created in parallel, so all changes go through one lock file
// and every write is a temp file renamed into place: a reader never sees
// half a file, and two writers never lose each other's update.
//
// Only node built-ins are imported here: this module is on the path of
// every simulated `pct`/`qm` call and start-up time is the budget.

import fs from 'node:fs';
import tty from 'node:tty';
import path from 'node:path';

export const STATE_ENV = 'PHOENIX_SIM_STATE';

/** A tool ends with this: the exit status, and what it printed. */
export class ToolExit extends Error {
  readonly code: number;
  readonly stderr: string;
  readonly stdout: string;
  constructor(code: number, stderr: string, stdout = '') {
    super(stderr.trim() || `exit ${code}`);
    this.code = code;
    this.stderr = stderr;
    this.stdout = stdout;
  }
}

/**
 * Fail the way a Proxmox CLI does: Perl's `die` prints the message on stderr
 * and the process exits 255 (or errno, when it was set; see notFound()).
 */
export function die(message: string, code = 255): never {
  throw new ToolExit(code, message.endsWith('\n') ? message : `${message}\n`);
}

export interface Paths {
  root: string;
  pve: string;
  lxcDir: string;
  qemuDir: string;
  firewallDir: string;
  guests: string;
  stateFile: string;
  hostFile: string;
  injectFile: string;
  callsFile: string;
  lockFile: string;
  guestLockDir: string;
}

export function paths(root: string): Paths {
  const pve = path.join(root, 'pve');
  return {
    root,
    pve,
    lxcDir: path.join(pve, 'lxc'),
    qemuDir: path.join(pve, 'qemu-server'),
    firewallDir: path.join(pve, 'firewall'),
    guests: path.join(root, 'guests'),
    stateFile: path.join(root, 'state.json'),
    hostFile: path.join(root, 'host.json'),
    injectFile: path.join(root, 'inject.json'),
    callsFile: path.join(root, 'calls.jsonl'),
    lockFile: path.join(root, '.state.lock'),
    guestLockDir: path.join(root, 'run', 'lock'),
  };
}

/** The state directory, or exit 2: a simulator without state must not guess one. */
export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env[STATE_ENV];
  if (!dir) {
    throw new ToolExit(2, `simhost: ${STATE_ENV} is not set; run test/simhost/seed.mjs <dir> and export ${STATE_ENV}=<dir>\n`);
  }
  if (!fs.existsSync(path.join(dir, 'state.json'))) {
    throw new ToolExit(2, `simhost: ${dir} is not a seeded simulator state (no state.json); run test/simhost/seed.mjs ${dir}\n`);
  }
  return path.resolve(dir);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocking sleep: the tools are synchronous on purpose (one short process per call). */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

let tmpCounter = 0;

/** Write through a temp file in the same directory and rename it into place. */
export function atomicWrite(file: string, data: string | Buffer, mode?: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp.${process.pid}.${tmpCounter++}`;
  try {
    fs.writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
    if (mode !== undefined) fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

export function readJson<T>(file: string, fallback: T): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw error;
  }
  if (text.trim() === '') return fallback;
  return JSON.parse(text) as T;
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface LockOptions {
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** Called once, the first time the lock is found busy. */
  onContention?: () => void;
}

/**
 * Take an exclusive lock file (O_EXCL). A lock whose holder process is gone
 * is taken over; we re-read it just before removing it so a lock that a
 * third process took over in the meantime is left alone (the window that
 * remains is microseconds, acceptable for a test double).
 * Returns a release function, or undefined on time-out.
 */
export function acquireLock(file: string, options: LockOptions): (() => void) | undefined {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + options.timeoutMs;
  const token = `${process.pid} ${Date.now()} ${Math.random().toString(36).slice(2)}`;
  let contended = false;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, token);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === token) fs.unlinkSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = '';
    try {
      holder = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // released between our open and read: try again at once
    }
    const holderPid = Number(holder.split(' ')[0]);
    // An empty file is a holder that has created but not yet written it.
    if (holder !== '' && !pidAlive(holderPid)) {
      try {
        if (fs.readFileSync(file, 'utf8') === holder) fs.unlinkSync(file);
      } catch {
        // someone else cleaned it up
      }
      continue;
    }
    if (!contended) {
      contended = true;
      options.onContention?.();
    }
    if (Date.now() >= deadline) return undefined;
    sleepSync(2 + Math.floor(Math.random() * 8));
  }
}

const STATE_LOCK_TIMEOUT_MS = 60_000;

/** Run `fn` holding the state lock. Hold times are milliseconds; a minute means something is wedged. */
export function withStateLock<T>(root: string, fn: () => T): T {
  const release = acquireLock(paths(root).lockFile, { timeoutMs: STATE_LOCK_TIMEOUT_MS });
  if (!release) throw new ToolExit(2, `simhost: could not take the state lock ${paths(root).lockFile} within ${STATE_LOCK_TIMEOUT_MS / 1000} s\n`);
  try {
    return fn();
  } finally {
    release();
  }
}

// ---------------------------------------------------------------------------
// Runtime state (what is not a Proxmox file): guest run state, storage
// contents, ZFS, the appliance index, pending guest-agent commands.

export type GuestKind = 'lxc' | 'qemu';

export interface GuestRuntime {
  status: 'running' | 'stopped';
  /** Epoch ms of the last start. */
  startedAt?: number;
  /** Epoch ms from which the QEMU guest agent answers. */
  agentReadyAt?: number;
  pid?: number;
}

export interface Volume {
  size: number;
  format: string;
  /** Owning guest, when the name says so (vm-101-disk-0). */
  vmid?: number;
}

export interface StorageDef {
  type: 'dir' | 'zfspool' | 'lvmthin' | 'nfs';
  content: string[];
  /** Mount path for dir/nfs storages (as on the real host, e.g. /var/lib/vz). */
  path?: string;
  /** ZFS dataset for zfspool storages (e.g. quickOS/vm-disks). */
  pool?: string;
  vgname?: string;
  thinpool?: string;
  shared?: boolean;
  disabled?: boolean;
  /** Capacity in bytes (zfspool storages take it from their pool). */
  total: number;
  /** dir/lvmthin/nfs contents, keyed by volume name (vztmpl/x.tar.zst, vm-101-disk-0). */
  volumes: Record<string, Volume>;
}

export interface ZfsDataset {
  type: 'filesystem' | 'volume' | 'snapshot';
  /** Locally set properties (zfs set / create -o). */
  props: Record<string, string>;
  used: number;
  volsize?: number;
  created: number;
}

export interface ZfsPool {
  size: number;
  health: string;
  vdevs: string[];
  layout: 'mirror' | 'raidz1' | 'single';
}

export interface Appliance {
  section: string;
  template: string;
  architecture: string;
  size: number;
}

export interface PendingExec {
  doneAt: number;
  exitcode: number;
  out: string;
  err: string;
}

export interface Runtime {
  version: 1;
  guests: Record<string, GuestRuntime>;
  storage: Record<string, StorageDef>;
  zfs: { pools: Record<string, ZfsPool>; datasets: Record<string, ZfsDataset> };
  /** `applied`: the rule set of the last start/restart, to report pending changes. */
  firewall: { running: boolean; applied?: string };
  appliances: Appliance[];
  agentExec: Record<string, Record<string, PendingExec>>;
  nextPid: number;
}

export function emptyRuntime(): Runtime {
  return {
    version: 1,
    guests: {},
    storage: {},
    zfs: { pools: {}, datasets: {} },
    firewall: { running: true },
    appliances: [],
    agentExec: {},
    nextPid: 1000,
  };
}

export function loadRuntime(root: string): Runtime {
  return { ...emptyRuntime(), ...readJson<Partial<Runtime>>(paths(root).stateFile, {}) } as Runtime;
}

export function saveRuntime(root: string, runtime: Runtime): void {
  atomicWrite(paths(root).stateFile, `${JSON.stringify(runtime, null, 2)}\n`);
}

/** Read-modify-write of the runtime state under the lock. */
export function updateRuntime<T>(root: string, fn: (runtime: Runtime) => T): T {
  return withStateLock(root, () => {
    const runtime = loadRuntime(root);
    const result = fn(runtime);
    saveRuntime(root, runtime);
    return result;
  });
}

export interface HostInfo {
  node: string;
  /** Cores and memory reported by pvesh/pvesm; cosmetic. */
  cpus: number;
  memory: number;
  pveVersion: string;
  /** The address the node name resolves to (/etc/hosts on PVE); /cluster/status shows it. */
  ip: string;
}

export function readHost(root: string): HostInfo {
  const host = readJson<Partial<HostInfo>>(paths(root).hostFile, {});
  return {
    node: host.node ?? 'pve',
    cpus: host.cpus ?? 32,
    memory: host.memory ?? 128 * 1024 ** 3,
    pveVersion: host.pveVersion ?? '8.4.1',
    ip: host.ip ?? '192.168.1.50',
  };
}

/** Write all of `text` to a descriptor that may be non-blocking; a reader that went away ends it quietly. */
export function writeAll(fd: number, text: string): void {
  const data = Buffer.from(text);
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += fs.writeSync(fd, data, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
        sleepSync(1);
        continue;
      }
      return; // EPIPE and friends
    }
  }
}

/** This process's stdin read whole (a tool's `input`); empty when it is a terminal, closed or not readable. */
export function readStdinSync(): Buffer {
  try {
    if (tty.isatty(0)) return Buffer.alloc(0);
  } catch {
    return Buffer.alloc(0);
  }
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        sleepSync(2);
        continue;
      }
      if (code === 'EOF') break;
      break; // closed or not readable: no input
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}
