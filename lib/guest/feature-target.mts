// Where a feature plan runs: a container through pct (`pct exec <id> --
// bash -s` with the script on stdin, `pct push` for a file) or a VM through
// its guest agent (`qm guest exec`, polled until the command has really
// exited; the bash read a 30 s agent time-out as success). The plan runner
// (feature-plan.mts) sees only this interface.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import * as qm from '../pve/qm.mts';
import { CommandError, PhoenixError } from '../core/errors.mts';
import type { CommandResult } from '../core/runner.mts';
import type { FeatureContext, FileStep, GuestKind } from './feature-steps.mts';

export interface GuestExec {
  exitcode: number;
  stdout: string;
  stderr: string;
}

export interface FeatureTarget {
  kind: GuestKind;
  id: string;
  /** "CT 101", "VM 1001": how logs and errors name the guest. */
  where: string;
  /** Run the read-only check script; a guest that cannot be reached is an error that says how to reach it. */
  check(feature: string, script: string, args: readonly string[], timeoutMs: number): Promise<GuestExec>;
  /** Run the script of one step (a change); its failure is an answer, the caller words the error. */
  run(script: string, args: readonly string[], timeoutMs: number): Promise<GuestExec>;
  /** Put a file with its content (on stdin or from a private temp file), mode and root as owner. */
  place(step: FileStep, timeoutMs: number): Promise<GuestExec>;
}

export function featureTarget(kind: GuestKind, id: string, context: FeatureContext): FeatureTarget {
  return kind === 'vm' ? vmTarget(id, context) : containerTarget(id);
}

// ---------------------------------------------------------------- VMs

export function vmTarget(vmid: string, context: FeatureContext): FeatureTarget {
  const polling = {
    ...(context.pollMs === undefined ? {} : { pollMs: context.pollMs }),
    ...(context.agentWaitSeconds === undefined ? {} : { agentWaitSeconds: context.agentWaitSeconds }),
  };
  return {
    kind: 'vm',
    id: vmid,
    where: `VM ${vmid}`,
    async check(feature, script, args, timeoutMs) {
      try {
        return await qm.guestExec(vmid, ['bash', '-s', '--', ...args], { mutating: false, input: script, timeoutMs, allowFailure: true, ...polling });
      } catch (err) {
        if (err instanceof CommandError) {
          throw new PhoenixError(`${feature}: cannot reach VM ${vmid} through the guest agent: ${err.message}`, {
            exitCode: err.exitCode,
            cause: err,
            hint: `the VM must be running with qemu-guest-agent up (vm-manager starts it and waits for the agent)`,
          });
        }
        throw err;
      }
    },
    run: (script, args, timeoutMs) => qm.guestExec(vmid, ['bash', '-s', '--', ...args], { input: script, timeoutMs, allowFailure: true, ...polling }),
    place: (step, timeoutMs) =>
      qm.guestExec(vmid, ['install', '-D', '-m', `0${step.mode.toString(8)}`, '-o', 'root', '-g', 'root', '/dev/stdin', step.path], {
        input: step.content,
        timeoutMs,
        allowFailure: true,
        ...polling,
      }),
  };
}

// ---------------------------------------------------------------- containers

function answer(result: CommandResult): GuestExec {
  return { exitcode: result.code, stdout: result.stdout, stderr: result.stderr };
}

function failed(err: unknown): GuestExec {
  if (err instanceof CommandError) return { exitcode: err.exitCode, stdout: '', stderr: err.message };
  throw err;
}

export function containerTarget(ctid: string): FeatureTarget {
  return {
    kind: 'lxc',
    id: ctid,
    where: `CT ${ctid}`,
    async check(feature, script, args, timeoutMs) {
      try {
        return answer(await pct.execScript(ctid, script, args, { mutating: false, allowFailure: true, quiet: true, timeoutMs }));
      } catch (err) {
        if (err instanceof CommandError) {
          throw new PhoenixError(`${feature}: cannot run the state check in CT ${ctid}: ${err.message}`, { exitCode: err.exitCode, cause: err, hint: `phoenix start ${ctid}` });
        }
        throw err;
      }
    },
    run: async (script, args, timeoutMs) => answer(await pct.execScript(ctid, script, args, { allowFailure: true, timeoutMs })),
    // pct push has no time limit of its own; the runner's default applies.
    async place(step) {
      // pct push takes a host file: the content goes through a private temp directory (0700, file 0600).
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-feature-'));
      try {
        const file = path.join(dir, path.posix.basename(step.path));
        fs.writeFileSync(file, step.content, { mode: 0o600 });
        const perms = `0${step.mode.toString(8)}`;
        return answer(await pct.pushFile(ctid, file, step.path, { perms }));
      } catch (err) {
        return failed(err);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
