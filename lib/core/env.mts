// Every environment variable Phoenix reads is resolved here, in one function,
// so a reader finds each knob and its default in one place. Child scripts get
// the same values back through `childEnv`, which is how an override given to
// phoenix-cli reaches the managers it starts (the bash toolkit lost them).
// Dry-run, the command record and the command time limit belong to the run
// context (context.mts), which reads and passes on its own variables.

import path from 'node:path';
import { contextEnvironment } from './context.mts';

export const DEFAULT_BASE_DIR = '/usr/local/phoenix_hypervisor';
export const DEFAULT_LOG_FILE = '/var/log/phoenix_hypervisor.log';
export const DEFAULT_PVE_DIR = '/etc/pve';
export const DEFAULT_LOCK_FILE = '/run/phoenix.lock';

export interface PhoenixOptions {
  /** Installation root: holds etc/ (manifests) and, for a legacy tree, bin/. */
  baseDir: string;
  /** PHOENIX_DEBUG=true: log DEBUG lines (off by default, unlike the bash). */
  debug: boolean;
  /** MAIN_LOG_FILE: where every log line is appended. */
  logFile: string;
  /** Root of the Proxmox cluster filesystem (firewall files, guest configs). */
  pveDir: string;
  /** Host-wide lock that keeps two runs from interleaving. */
  lockFile: string;
  /** Seconds to wait for the host-wide lock before giving up (0: fail at once). */
  lockWaitSeconds: number;
  /** Root of a legacy bash tree (with bin/) for scripts that have no port yet. */
  legacyDir: string | undefined;
  /**
   * PHOENIX_USE_LEGACY: upstream script names (or `all`) to run from the
   * legacy tree even though a port exists: a per-script way back while
   * migrating.
   */
  useLegacy: string[];
  /** Set by `make sync` and the tests: the pct/qm on PATH are the simulated host. */
  simulatedHost: string | undefined;
  /** PHOENIX_RESET_PORTAINER=true, set by `phoenix --reset-portainer`. */
  resetPortainer: boolean;
  /** How many independent guests may be worked on at once (PHOENIX_PARALLEL). */
  parallel: number;
  /**
   * PHOENIX_HOST_ROOT: where the host's own files (bind-mount sources,
   * /var/lib/phoenix) are, normally `/`. On the simulated host it defaults to
   * `<PHOENIX_SIM_STATE>/hostfs`, so a trial run never writes below the real `/`.
   */
  hostRoot: string;
  /** PHOENIX_START_RETRY_DELAY_MS: pause between `pct start` attempts (default 5000). */
  startRetryDelayMs: number;
  /** PHOENIX_AGENT_TIMEOUT: seconds to wait for a VM's guest agent to answer (default 300). */
  agentTimeoutSeconds: number;
  /** PHOENIX_GUEST_TIMEOUT: seconds one command inside a VM (a feature, cloud-init) may run (default 1800). */
  guestTimeoutSeconds: number;
  /** PHOENIX_POLL_INTERVAL_MS: pause between polls of a guest (agent ping, exec status, feature log; default 5000). */
  pollIntervalMs: number;
  /**
   * PHOENIX_SKIP_GUEST_VERIFY=true: after changing a VM, do not check again
   * that the change took. Only for the simulated host, whose guests run
   * nothing (`make sync` sets it there); on a real host the check is what
   * tells a working step from one that merely exited 0.
   */
  skipGuestVerify: boolean;
  /**
   * Portainer's API for `sync all`: PHOENIX_PORTAINER_URL (default https to
   * network.portainer_server_ip), PHOENIX_PORTAINER_CA (default the root CA
   * copy), PHOENIX_PORTAINER_RETRIES and PHOENIX_PORTAINER_BACKOFF_MS.
   */
  portainer: { url?: string; caFile?: string; retries?: number; backoffMs?: number };
}

type Env = Record<string, string | undefined>;

export function resolveOptions(env: Env = process.env): PhoenixOptions {
  const baseDir = path.resolve(nonEmpty(env.PHOENIX_BASE_DIR) ?? DEFAULT_BASE_DIR);
  return {
    baseDir,
    debug: isTrue(env.PHOENIX_DEBUG),
    logFile: nonEmpty(env.MAIN_LOG_FILE) ?? DEFAULT_LOG_FILE,
    pveDir: nonEmpty(env.PHOENIX_PVE_DIR) ?? DEFAULT_PVE_DIR,
    lockFile: nonEmpty(env.PHOENIX_LOCK_FILE) ?? DEFAULT_LOCK_FILE,
    lockWaitSeconds: seconds(env.PHOENIX_LOCK_WAIT, 0),
    legacyDir: nonEmpty(env.PHOENIX_LEGACY_DIR),
    useLegacy: (env.PHOENIX_USE_LEGACY ?? '').split(/[\s,]+/).filter(Boolean),
    simulatedHost: nonEmpty(env.PHOENIX_SIM_STATE),
    resetPortainer: isTrue(env.PHOENIX_RESET_PORTAINER),
    parallel: Math.max(1, Math.floor(seconds(env.PHOENIX_PARALLEL, 4))),
    hostRoot: path.resolve(nonEmpty(env.PHOENIX_HOST_ROOT) ?? (nonEmpty(env.PHOENIX_SIM_STATE) ? path.join(env.PHOENIX_SIM_STATE as string, 'hostfs') : '/')),
    startRetryDelayMs: seconds(env.PHOENIX_START_RETRY_DELAY_MS, 5000),
    agentTimeoutSeconds: seconds(env.PHOENIX_AGENT_TIMEOUT, 300),
    guestTimeoutSeconds: seconds(env.PHOENIX_GUEST_TIMEOUT, 1800),
    pollIntervalMs: seconds(env.PHOENIX_POLL_INTERVAL_MS, 5000),
    skipGuestVerify: isTrue(env.PHOENIX_SKIP_GUEST_VERIFY),
    portainer: portainerOptions(env),
  };
}

function portainerOptions(env: Env): PhoenixOptions['portainer'] {
  const url = nonEmpty(env.PHOENIX_PORTAINER_URL)?.trim();
  const caFile = nonEmpty(env.PHOENIX_PORTAINER_CA);
  const retries = Number(env.PHOENIX_PORTAINER_RETRIES);
  const backoffMs = Number(env.PHOENIX_PORTAINER_BACKOFF_MS);
  return {
    ...(url ? { url } : {}),
    ...(caFile ? { caFile } : {}),
    ...(nonEmpty(env.PHOENIX_PORTAINER_RETRIES) && Number.isFinite(retries) && retries >= 1 ? { retries } : {}),
    ...(nonEmpty(env.PHOENIX_PORTAINER_BACKOFF_MS) && Number.isFinite(backoffMs) && backoffMs >= 0 ? { backoffMs } : {}),
  };
}

/**
 * The environment for a child script: the parent's, with the resolved
 * options written back so the child resolves exactly the same values.
 */
export function childEnv(options: PhoenixOptions, extra: Env = {}, base: Env = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (value !== undefined) env[key] = value;
  env.PHOENIX_BASE_DIR = options.baseDir;
  env.PHOENIX_DEBUG = String(options.debug);
  env.MAIN_LOG_FILE = options.logFile;
  env.PHOENIX_PVE_DIR = options.pveDir;
  env.PHOENIX_LOCK_FILE = options.lockFile;
  env.PHOENIX_RESET_PORTAINER = String(options.resetPortainer);
  env.PHOENIX_PARALLEL = String(options.parallel);
  env.PHOENIX_LOCK_WAIT = String(options.lockWaitSeconds);
  if (options.simulatedHost !== undefined) env.PHOENIX_SIM_STATE = options.simulatedHost;
  if (options.legacyDir !== undefined) env.PHOENIX_LEGACY_DIR = options.legacyDir;
  if (options.useLegacy.length > 0) env.PHOENIX_USE_LEGACY = options.useLegacy.join(' ');
  delete env.PHOENIX_RECORD;
  Object.assign(env, contextEnvironment());
  if (options.hostRoot !== '/') env.PHOENIX_HOST_ROOT = options.hostRoot;
  env.PHOENIX_AGENT_TIMEOUT = String(options.agentTimeoutSeconds);
  env.PHOENIX_GUEST_TIMEOUT = String(options.guestTimeoutSeconds);
  env.PHOENIX_POLL_INTERVAL_MS = String(options.pollIntervalMs);
  if (options.skipGuestVerify) env.PHOENIX_SKIP_GUEST_VERIFY = 'true';
  if (options.portainer.url !== undefined) env.PHOENIX_PORTAINER_URL = options.portainer.url;
  if (options.portainer.caFile !== undefined) env.PHOENIX_PORTAINER_CA = options.portainer.caFile;
  if (options.portainer.retries !== undefined) env.PHOENIX_PORTAINER_RETRIES = String(options.portainer.retries);
  if (options.portainer.backoffMs !== undefined) env.PHOENIX_PORTAINER_BACKOFF_MS = String(options.portainer.backoffMs);
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes'].includes(value.trim().toLowerCase());
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function seconds(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}
