// A container's health checks, run once its features and application script
// are in place.
//
// - `features` containing nvidia: health_checks/check_nvidia.sh <ctid>, on the host.
// - `health_checks[]`: each `{script, args}` is health_checks/<script> on the
//   host, with its arguments as a vector (never a shell string).
// - `health_check` (singular) `{command, retries, interval}`: the container's
//   own probe. Its command runs inside the container, retried `retries`
//   times `interval` seconds apart. Manifests written for the bash toolkit
//   name one of the toolkit's checks here by its host path
//   (<base>/bin/health_checks/check_step_ca.sh), a script that exists only
//   on the host and was never run there: such a command runs the check it
//   names (Phoenix's own probe where it has one), and a command whose program
//   exists neither way is reported and skipped, never a failed create.

import path from 'node:path';
import type { LxcConfig } from '../config/types.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { PhoenixError } from '../core/errors.mts';
import { info, warn } from '../core/log.mts';
import * as pct from '../pve/pct.mts';
import { sleep } from '../core/runner.mts';
import { STEP_CA_ROOT_CERT } from '../guest/root-ca.mts';
import { stepArgv, stepCaSettings } from '../pki/step-ca.mts';

export const healthScript = (script: string): string => `health_checks/${script}`;

export type HealthCheck = NonNullable<LxcConfig['health_check']>;

/** What a singular health_check's command means. */
export type ProbePlan =
  | { kind: 'guest'; argv: string[] }
  | { kind: 'builtin'; name: string; argv: string[] }
  | { kind: 'toolkit'; script: string; args: string[] };

/** Toolkit checks whose work Phoenix does itself, inside the container. */
const BUILTIN_PROBES = new Set(['check_step_ca.sh']);

/** `…/bin/health_checks/<script>`: one of the toolkit's checks, named by its install path. */
function toolkitCheck(program: string): string | undefined {
  if (!program.startsWith('/')) return undefined;
  const dir = path.posix.dirname(path.posix.normalize(program));
  return dir.endsWith('/bin/health_checks') ? path.posix.basename(program) : undefined;
}

export function planProbe(command: string): ProbePlan {
  const argv = command.trim().split(/\s+/).filter(Boolean);
  const [program, ...args] = argv;
  if (program === undefined) throw new PhoenixError('health_check.command is empty');
  const script = toolkitCheck(program) ?? (BUILTIN_PROBES.has(program) ? program : undefined);
  if (script === undefined) return { kind: 'guest', argv };
  if (BUILTIN_PROBES.has(script)) return { kind: 'builtin', name: script, argv };
  return { kind: 'toolkit', script, args };
}

export interface ProbeContext {
  ctid: string;
  config: PhoenixConfig;
  options: PhoenixOptions;
  /** Runs a toolkit script on the host (port or bash original); its exit status, or undefined when neither exists. */
  runHostScript(name: string, args: readonly string[]): Promise<number | undefined>;
}

/** Run the singular health_check; throws when the probe ran and kept failing. */
export async function runProbe(ctx: ProbeContext, check: HealthCheck): Promise<void> {
  const plan = planProbe(check.command);
  const attempts = Math.max(1, check.retries ?? 1);
  const intervalMs = (check.interval ?? 5) * 1000;
  let once: () => Promise<{ ok: boolean; detail: string } | 'absent'>;
  if (plan.kind === 'builtin') once = () => builtinProbe(ctx, plan.name);
  else if (plan.kind === 'toolkit') {
    once = async () => {
      const code = await ctx.runHostScript(healthScript(plan.script), plan.args);
      return code === undefined ? 'absent' : { ok: code === 0, detail: `exit ${code}` };
    };
  } else {
    if (!(await programInGuest(ctx.ctid, plan.argv[0] as string))) {
      warn(`CT ${ctx.ctid}: health_check.command '${check.command}' was not run: '${plan.argv[0]}' does not exist in the container`);
      return;
    }
    once = async () => {
      const result = await pct.exec(ctx.ctid, plan.argv, { mutating: false, allowFailure: true });
      return { ok: result.code === 0, detail: (result.stderr || result.stdout).trim() || `exit ${result.code}` };
    };
  }
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const outcome = await once();
    if (outcome === 'absent') {
      warn(`CT ${ctx.ctid}: health_check.command '${check.command}' was not run: neither Phoenix nor the bash toolkit (PHOENIX_LEGACY_DIR) has ${healthScript((plan as { script: string }).script)}`);
      return;
    }
    if (outcome.ok) {
      info(`health check '${check.command}' passed for CT ${ctx.ctid}${plan.kind === 'builtin' ? ` (Phoenix's ${plan.name})` : ''}`);
      return;
    }
    last = outcome.detail;
    if (attempt < attempts) {
      info(`health check '${check.command}' in CT ${ctx.ctid} failed (attempt ${attempt}/${attempts}); retrying in ${intervalMs / 1000} s`);
      await sleep(intervalMs);
    }
  }
  throw new PhoenixError(`Health check '${check.command}' failed for CT ${ctx.ctid} after ${attempts} attempt${attempts === 1 ? '' : 's'}${last ? `: ${last}` : ''}`);
}

async function programInGuest(ctid: string, program: string): Promise<boolean> {
  if (program.includes('/')) return pct.test(ctid, '-e', program);
  const result = await pct.exec(ctid, ['which', program], { mutating: false, allowFailure: true, quiet: true });
  return result.code === 0;
}

/**
 * check_step_ca.sh's checks, made from what Phoenix knows: the step-ca unit
 * is active and `step ca health` answers ok at the CA's URL with the CA's
 * own root (the bash script's fixed URL and root path were its own install's).
 */
async function builtinProbe(ctx: ProbeContext, name: string): Promise<{ ok: boolean; detail: string }> {
  if (name !== 'check_step_ca.sh') throw new PhoenixError(`no built-in probe ${name}`);
  const active = await pct.exec(ctx.ctid, ['systemctl', 'is-active', 'step-ca'], { mutating: false, allowFailure: true, quiet: true });
  if (active.code !== 0) return { ok: false, detail: `step-ca is ${active.stdout.trim() || 'not active'}` };
  const settings = stepCaSettings(ctx.config, ctx.options);
  const health = await pct.exec(ctx.ctid, stepArgv('ca', 'health', '--ca-url', settings.caUrl, '--root', STEP_CA_ROOT_CERT), { mutating: false, allowFailure: true, quiet: true });
  const ok = health.code === 0 && /\bok\b/.test(health.stdout);
  return { ok, detail: ok ? 'ok' : (health.stderr || health.stdout).trim() || `exit ${health.code}` };
}
