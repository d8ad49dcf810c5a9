// What every stage of `sync all` shares: the result and context types, the
// names of the scripts stages run, and the lookups they make in the
// manifests. The stages themselves are in host-stages.mts,
// portainer-stage.mts, gateway-stages.mts and stages.mts (the list).

import fs from 'node:fs';
import path from 'node:path';
import type { ConfigPaths, PhoenixConfig, VmConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { toolFor } from '../pve/guest-tool.mts';
import { claimsNoChange, failureLine, type ChildContext, type ChildRun } from './child.mts';
import { stacksDirectory } from '../stacks/render.mts';
import { PortainerClient } from '../portainer/client.mts';
import { hostPath } from '../portainer/password.mts';

export type StageStatus = 'changed' | 'unchanged' | 'failed' | 'skipped';

export interface StageResult {
  status: StageStatus;
  /** One line: what changed, why nothing did, or why it was skipped. */
  detail: string;
  /** For a failure: the command (or API call) that failed. */
  command?: string;
  /** The failed child script's exit status, passed on as sync's own. */
  exitCode?: number;
}

export interface SyncContext extends ChildContext {
  config: PhoenixConfig;
  options: PhoenixOptions;
  paths: ConfigPaths;
  resetPortainer: boolean;
  /** The stacks environment sync deploys (the bash always used production). */
  environment: string;
  /** Set by the Portainer stage once it is logged in. */
  portainer?: { client: PortainerClient; token: string; swarmEndpointId: number };
  /** `sync stack <name> to <vmid>`: the only application stack to deploy. */
  onlyStack?: { name: string; vmid: string };
}

export interface Stage {
  id: string;
  title: string;
  /** Stages that must have worked (changed/unchanged) for this one to make sense. */
  needs: string[];
  /** Stages that must not have failed (a skip is fine). */
  after: string[];
  /** What the stage will do, for the plan printed up front. */
  describe(ctx: SyncContext): string;
  run(ctx: SyncContext): Promise<StageResult>;
}

/** The Portainer server stack, deployed by the Portainer stage and not again with the applications. */
export const PORTAINER_STACK = 'portainer_service';
export const SWARM_MANAGER = 'managers/swarm-manager.sh';
/** Where generate_traefik_config.sh writes the static configuration, under the base directory. */

// ---------------------------------------------------------------- helpers

export const changed = (detail: string): StageResult => ({ status: 'changed', detail });
export const unchanged = (detail: string): StageResult => ({ status: 'unchanged', detail });
export const skipped = (detail: string): StageResult => ({ status: 'skipped', detail });
export const failed = (detail: string, command?: string, exitCode?: number): StageResult => ({ status: 'failed', detail, ...(command === undefined ? {} : { command }), ...(exitCode === undefined ? {} : { exitCode }) });

export function onHost(options: PhoenixOptions, file: string): string {
  return hostPath(options, file);
}

/** A child's outcome as a stage result, or undefined when it worked (the caller goes on). */
export function childFailure(run: ChildRun): StageResult | undefined {
  if (run.kind === 'missing') return skipped(`not available: ${run.problem ?? run.command}`);
  if (run.code !== 0) return failed(failureLine(run) || `exit ${run.code}`, run.command, run.code);
  return undefined;
}

/** Whether a child that worked changed something, and a few words on what. */
export function childChange(run: ChildRun): { changed: boolean; what: string } {
  const parts: string[] = [];
  if (run.mutations.length > 0) parts.push(`${run.mutations.length} command${run.mutations.length === 1 ? '' : 's'}`);
  if (run.filesChanged.length > 0) parts.push(`${run.filesChanged.length} file${run.filesChanged.length === 1 ? '' : 's'}`);
  if (parts.length > 0) return { changed: true, what: parts.join(', ') };
  if (run.kind === 'legacy' && !claimsNoChange(run)) return { changed: true, what: 'bash original (changes not observable)' };
  return { changed: false, what: '' };
}

export function fromChild(run: ChildRun, done: string, same: string): StageResult {
  const failure = childFailure(run);
  if (failure) return failure;
  const change = childChange(run);
  return change.changed ? changed(`${done} (${change.what})`) : unchanged(same);
}

export function vms(ctx: SyncContext): VmConfig[] {
  return ctx.config.vm.vms.filter((vm) => vm.is_template !== true);
}

export function swarmManager(ctx: SyncContext): VmConfig | undefined {
  return vms(ctx).find((vm) => vm.swarm_role === 'manager');
}

export function portainerPrimary(ctx: SyncContext): VmConfig | undefined {
  return vms(ctx).find((vm) => vm.portainer_role === 'primary');
}

export function address(vm: VmConfig): string | undefined {
  const ip = vm.network_config?.ip;
  return ip && ip !== 'dhcp' ? ip.split('/')[0] : undefined;
}

/** The host directory the stack files are mirrored to (the one swarm-manager reads and the manager mounts). */
export function stacksExport(ctx: SyncContext): string {
  return stacksDirectory(ctx.config, '/');
}

/** The stack templates to mirror: <base>/stacks (the bash's layout), else stacks/ beside the stacks manifest. */
export function stackSources(ctx: SyncContext): string | undefined {
  return [path.join(ctx.options.baseDir, 'stacks'), path.join(path.dirname(ctx.paths.stacks), 'stacks')].find((dir) => fs.existsSync(dir));
}

/** The application stacks to deploy: each VM's docker_stacks, once each, without Portainer's own. */
export function applicationStacks(ctx: SyncContext): Array<{ name: string; vmid: string }> {
  if (ctx.onlyStack) return [ctx.onlyStack];
  const seen = new Set<string>();
  const out: Array<{ name: string; vmid: string }> = [];
  for (const vm of vms(ctx)) {
    for (const name of vm.docker_stacks ?? []) {
      if (name === PORTAINER_STACK || seen.has(name)) continue;
      seen.add(name);
      out.push({ name, vmid: String(vm.vmid) });
    }
  }
  return out;
}

export async function guestState(kind: 'lxc' | 'vm', id: string): Promise<'running' | 'stopped' | 'absent'> {
  return toolFor(kind).status(id);
}
