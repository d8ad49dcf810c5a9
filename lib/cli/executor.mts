// Applies a plan of script calls: phases in order, waves in order, the steps
// of a wave in parallel up to a limit. The first failure stops new work
// (steps already running finish), like the bash toolkit's `set -e`, and the
// run ends with the failed step's exit status.

import { info, error, success } from '../core/log.mts';
import type { Phase, Step } from './orchestrator.mts';

export interface StepOutcome {
  step: Step;
  code: number;
  ms: number;
}

export interface ExecutionResult {
  outcomes: StepOutcome[];
  failed: StepOutcome | undefined;
  /** Steps never started because an earlier one failed. */
  notRun: Step[];
}

export interface ExecuteOptions {
  runStep: (step: Step) => Promise<number>;
  concurrency: number;
  /** Steps that must not overlap with any other (legacy bash is not safe to run in parallel). */
  exclusive?: (step: Step) => boolean;
}

export function describeStep(step: Step): string {
  return `${step.script} ${step.args.join(' ')}`;
}

export async function executePhases(phases: readonly Phase[], options: ExecuteOptions): Promise<ExecutionResult> {
  const outcomes: StepOutcome[] = [];
  const notRun: Step[] = [];
  let failed: StepOutcome | undefined;

  for (const phase of phases) {
    for (const skip of phase.skipped) info(`${phase.name}: skipping ${skip.guest}: ${skip.reason}`);
    const steps = phase.waves.flat();
    if (steps.length === 0) continue;
    if (failed) {
      notRun.push(...steps);
      continue;
    }
    const oneByOne = phase.waves.every((wave) => wave.length === 1);
    info(`--- ${phase.name}: ${steps.length} step${steps.length === 1 ? '' : 's'}${oneByOne ? '' : ` in ${phase.waves.length} waves`} ---`);
    for (const [index, wave] of phase.waves.entries()) {
      if (failed) {
        notRun.push(...wave);
        continue;
      }
      const serial = options.concurrency <= 1 || wave.some((step) => options.exclusive?.(step) ?? false);
      if (!oneByOne) {
        info(`${phase.name} wave ${index + 1}/${phase.waves.length}: ${wave.map((s) => s.guest ?? describeStep(s)).join(', ')}${serial || wave.length === 1 ? '' : ' (in parallel)'}`);
      }
      const waveResult = await runWave(wave, serial ? 1 : options.concurrency, options.runStep);
      outcomes.push(...waveResult.outcomes);
      notRun.push(...waveResult.notRun);
      failed = waveResult.outcomes.find((o) => o.code !== 0);
    }
  }
  if (failed) {
    error(`'${describeStep(failed.step)}' failed with exit code ${failed.code}${notRun.length ? `; not run: ${notRun.map(describeStep).join(', ')}` : ''}`);
  } else if (outcomes.length > 0) {
    success(`${outcomes.length} step${outcomes.length === 1 ? '' : 's'} completed`);
  }
  return { outcomes, failed, notRun };
}

async function runWave(wave: readonly Step[], limit: number, runStep: (step: Step) => Promise<number>): Promise<{ outcomes: StepOutcome[]; notRun: Step[] }> {
  const outcomes: StepOutcome[] = [];
  const notRun: Step[] = [];
  const busyKeys = new Set<string>();
  const pending = [...wave];
  let stop = false;
  let running = 0;
  // Pick the next step whose serial key is free; steps without a key are always free.
  const takeNext = (): Step | undefined => {
    const index = pending.findIndex((s) => s.serialKey === undefined || !busyKeys.has(s.serialKey));
    return index < 0 ? undefined : pending.splice(index, 1)[0];
  };
  await new Promise<void>((resolve) => {
    const launch = () => {
      if (stop) notRun.push(...pending.splice(0));
      while (!stop && running < limit) {
        const step = takeNext();
        if (!step) break;
        running++;
        if (step.serialKey) busyKeys.add(step.serialKey);
        const started = Date.now();
        void runStep(step)
          .catch(() => 1)
          .then((code) => {
            running--;
            if (step.serialKey) busyKeys.delete(step.serialKey);
            outcomes.push({ step, code, ms: Date.now() - started });
            if (code !== 0) stop = true;
            launch();
          });
      }
      if (running === 0) {
        notRun.push(...pending.splice(0));
        resolve();
      }
    };
    launch();
  });
  return { outcomes, notRun };
}
