// The Proxmox host itself, as the hypervisor_setup scripts see it: its
// files (under PHOENIX_HOST_ROOT, which is `/` on a real host and the
// simulator's tree in tests and `make sync`), its systemd units, its Debian
// packages, and the host copy of the Phoenix root CA.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onHost } from '../guest/hostdirs.mts';
import { query, run, type CommandResult } from '../core/runner.mts';
import { PhoenixError } from '../core/errors.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import type { FeatureContext } from '../guest/container.mts';
import { DEFAULT_ROOT_CA_FILE, ensureRootCaOnHost, parseRootCa, rootCaFile, type RootCa } from '../guest/root-ca.mts';

/** A host path named by a manifest or by Debian, where it is on this machine. */
export function hostFile(options: PhoenixOptions, hostPath: string): string {
  return onHost(options.hostRoot, hostPath);
}

// ---------------------------------------------------------------- the root CA copy

/**
 * Where the host keeps its copy of the root CA on this machine:
 * `step_ca.root_ca_file` under the host root. (When lib/guest/root-ca.mts
 * already maps the path, its answer is used as it is.)
 */
export function hostRootCaFile(context: FeatureContext): string {
  const configured = context.config.hypervisor.step_ca?.root_ca_file ?? DEFAULT_ROOT_CA_FILE;
  const fromPki = rootCaFile(context);
  return fromPki !== configured ? fromPki : onHost(context.options.hostRoot, configured);
}

/** The host copy of the root CA, or undefined when there is none yet. */
export async function readHostRootCa(context: FeatureContext): Promise<RootCa | undefined> {
  const file = hostRootCaFile(context);
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PhoenixError(`cannot read the root CA copy ${file}: ${(err as Error).message}`);
  }
  const { fingerprint } = await parseRootCa(pem, file);
  return { file, pem, fingerprint };
}

/**
 * The host copy of the root CA, pulled from the CA container first when the
 * host has none (lib/guest/root-ca.mts ensureRootCaOnHost, with the copy
 * placed under the host root).
 */
export async function ensureHostRootCa(context: FeatureContext): Promise<RootCa> {
  const mapped = hostRootCaFile(context);
  if (mapped === rootCaFile(context)) return ensureRootCaOnHost(context);
  return ensureRootCaOnHost({ ...context, config: withRootCaFile(context.config, mapped) });
}

/** The same manifests, with step_ca.root_ca_file replaced (nothing is copied or re-read). */
function withRootCaFile(config: PhoenixConfig, file: string): PhoenixConfig {
  const hypervisor = config.hypervisor;
  const view = Object.create(config) as PhoenixConfig;
  Object.defineProperty(view, 'hypervisor', {
    value: { ...hypervisor, step_ca: { ...hypervisor.step_ca, root_ca_file: file } },
    enumerable: true,
  });
  return view;
}

// ---------------------------------------------------------------- step on the host

/**
 * STEPPATH of the host's `step`: the environment's STEPPATH, else root's
 * default ~/.step under the host root. It is passed to every `step` call,
 * so the files Phoenix reads are the ones step wrote.
 */
export function hostStepPath(options: PhoenixOptions, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.STEPPATH?.trim();
  if (fromEnv) return path.resolve(fromEnv);
  return onHost(options.hostRoot, path.join(os.homedir(), '.step'));
}

// ---------------------------------------------------------------- systemd units

export type UnitActiveState = 'active' | 'inactive' | 'failed' | 'activating' | 'deactivating' | 'reloading' | 'unknown';

export async function unitActiveState(unit: string): Promise<UnitActiveState> {
  const result = await query({ cmd: 'systemctl', args: ['is-active', unit], allowFailure: true, quiet: true });
  const word = result.stdout.trim().split('\n')[0] ?? '';
  return (['active', 'inactive', 'failed', 'activating', 'deactivating', 'reloading'].includes(word) ? word : 'unknown') as UnitActiveState;
}

export async function unitEnabled(unit: string): Promise<boolean> {
  const result = await query({ cmd: 'systemctl', args: ['is-enabled', unit], allowFailure: true, quiet: true });
  return result.code === 0 && ['enabled', 'enabled-runtime', 'static', 'alias'].includes(result.stdout.trim());
}

/** Units whose file changed on disk since systemd loaded it (a run stopped before its `daemon-reload`). */
export async function unitsNeedingReload(units: readonly string[]): Promise<string[]> {
  const result = await query({ cmd: 'systemctl', args: ['show', '--property=NeedDaemonReload', '--value', ...units], allowFailure: true, quiet: true });
  // One answer per unit, the units' blocks separated by an empty line.
  const answers = result.stdout.split('\n').filter((line) => line.trim() !== '');
  return units.filter((_, i) => answers[i]?.trim() === 'yes');
}

export function systemctl(verb: 'start' | 'stop' | 'restart' | 'reload' | 'reload-or-restart' | 'enable' | 'disable' | 'daemon-reload', unit?: string): Promise<CommandResult> {
  return run({ cmd: 'systemctl', args: unit === undefined ? [verb] : [verb, unit] });
}

// ---------------------------------------------------------------- Debian packages

/** Whether dpkg has the package installed ("install ok installed"). */
export async function packageInstalled(name: string): Promise<boolean> {
  const result = await query({ cmd: 'dpkg-query', args: ['-W', '--showformat=${Status}', name], allowFailure: true, quiet: true });
  return result.code === 0 && result.stdout.trim() === 'install ok installed';
}

/** apt-get update, then install the packages (non-interactively). */
export async function aptInstall(packages: readonly string[]): Promise<void> {
  const env = { ...(process.env as Record<string, string>), DEBIAN_FRONTEND: 'noninteractive' };
  await run({ cmd: 'apt-get', args: ['update', '-q'], env, timeoutMs: 15 * 60_000 });
  await run({ cmd: 'apt-get', args: ['install', '-y', '-q', ...packages], env, timeoutMs: 30 * 60_000 });
}
