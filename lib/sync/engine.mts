// Runs the sync stages in order and reports: which stage runs (a spinner on
// a terminal, plain lines in logs), and a final table of every stage with
// changed / unchanged / failed / skipped and why. A stage whose prerequisite
// failed is not run (skipped, naming the failure); a failure names the
// command that failed, and the run's exit status is the failed child's.

import type { ChalkInstance } from 'chalk';
import { isDryRun } from '../core/context.mts';
import { chalkFor, configureLog, error, info, logSettings, success, warn } from '../core/log.mts';
import { exitCodeFor, PhoenixError } from '../core/errors.mts';
import { PortainerApiError } from '../portainer/client.mts';
import { CommandError } from '../core/errors.mts';
import type { Stage, StageResult, SyncContext } from './stages.mts';

export interface StageReport extends StageResult {
  id: string;
  title: string;
  ms: number;
}

export interface SyncReport {
  stages: StageReport[];
  exitCode: number;
}

const FRAMES = ['|', '/', '-', '\\'];

/** A one-line spinner on stderr, cleared before every log line so the two never mix. */
function startSpinner(label: string): () => void {
  if (!process.stderr.isTTY || process.env.NO_SPINNER) return () => {};
  const write = logSettings().write;
  let frame = 0;
  const started = Date.now();
  const draw = () => process.stderr.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${label} (${Math.round((Date.now() - started) / 1000)} s)`);
  configureLog({
    write: (line) => {
      process.stderr.write('\r\x1b[2K');
      write(line);
      draw();
    },
  });
  draw();
  const timer = setInterval(draw, 120);
  timer.unref();
  return () => {
    clearInterval(timer);
    process.stderr.write('\r\x1b[2K');
    configureLog({ write });
  };
}

export async function runStages(stages: readonly Stage[], ctx: SyncContext): Promise<SyncReport> {
  const reports: StageReport[] = [];
  const byId = new Map<string, StageReport>();
  const dry = isDryRun();
  info(`sync plan${dry ? ' (dry run: nothing will be changed)' : ''}:`);
  stages.forEach((stage, i) => info(`  ${i + 1}. ${stage.title}: ${safeDescribe(stage, ctx)}`));

  for (const [index, stage] of stages.entries()) {
    const started = Date.now();
    const blocker = blockingStage(stage, byId, dry);
    let result: StageResult;
    if (blocker) {
      result = { status: 'skipped', detail: blocker };
    } else {
      info(`--- [${index + 1}/${stages.length}] ${stage.title} ---`);
      const stop = startSpinner(`${stage.title}`);
      try {
        result = await stage.run(ctx);
      } catch (err) {
        result = asFailure(err);
      } finally {
        stop();
      }
    }
    const report: StageReport = { id: stage.id, title: stage.title, ms: Date.now() - started, ...result };
    reports.push(report);
    byId.set(stage.id, report);
    const line = `${stage.title}: ${label(report.status, dry)}${report.detail ? ` - ${report.detail}` : ''}`;
    if (report.status === 'failed') error(`${line}${report.command ? ` (failed: ${report.command})` : ''}`);
    else if (report.status === 'skipped') warn(line);
    else info(line);
  }

  process.stdout.write(formatSummary(reports, dry));
  const failure = reports.find((r) => r.status === 'failed');
  const changes = reports.filter((r) => r.status === 'changed').length;
  if (failure) {
    error(`sync failed at '${failure.title}'${failure.command ? ` (${failure.command})` : ''}; stages that depend on it were not run`);
  } else if (dry) {
    info(`dry run finished: nothing was changed; ${changes} stage${changes === 1 ? '' : 's'} would change something`);
  } else if (changes === 0) {
    success('sync complete: no change, everything already matched the manifests');
  } else {
    success(`sync complete: ${changes} stage${changes === 1 ? '' : 's'} changed something`);
  }
  return { stages: reports, exitCode: failure ? (failure.exitCode ?? 1) : 0 };
}

function safeDescribe(stage: Stage, ctx: SyncContext): string {
  try {
    return stage.describe(ctx);
  } catch (err) {
    return `(${err instanceof Error ? err.message : String(err)})`;
  }
}

function blockingStage(stage: Stage, done: ReadonlyMap<string, StageReport>, dry: boolean): string | undefined {
  for (const id of stage.needs) {
    const r = done.get(id);
    if (r?.status === 'failed') return `'${r.title}' failed`;
    if (r?.status === 'skipped') return `needs '${r.title}', which was skipped`;
    // Planned from the host as it is, this stage would meet a state the dry run did not make.
    if (r?.status === 'changed' && dry) return `runs once '${r.title}' has made its changes, which a dry run does not`;
  }
  for (const id of stage.after) {
    const r = done.get(id);
    if (r?.status === 'failed') return `'${r.title}' failed`;
  }
  return undefined;
}

function asFailure(err: unknown): StageResult {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof PortainerApiError) return { status: 'failed', detail: message, command: `${err.method} ${err.endpoint}` };
  if (err instanceof CommandError) return { status: 'failed', detail: message, command: err.command, exitCode: err.exitCode };
  if (err instanceof PhoenixError) return { status: 'failed', detail: `${message}${err.hint ? ` (${err.hint})` : ''}`, exitCode: exitCodeFor(err) };
  return { status: 'failed', detail: message };
}

function label(status: StageReport['status'], dry: boolean): string {
  if (!dry) return status;
  return status === 'changed' ? 'would change' : status;
}

const RESULT_STYLES: Record<StageReport['status'], (chalk: ChalkInstance) => ChalkInstance> = {
  changed: (chalk) => chalk.cyan,
  unchanged: (chalk) => chalk.green,
  failed: (chalk) => chalk.red,
  skipped: (chalk) => chalk.yellow,
};

/**
 * The table at the end of `sync all`, for stdout. Colour (the header in
 * bold, each result in its own colour) only when `chalk` colours: by
 * default when stdout is a terminal and NO_COLOR is unset.
 */
export function formatSummary(reports: readonly StageReport[], dry = false, chalk: ChalkInstance = chalkFor(process.stdout)): string {
  const rows = reports.map((r) => ({
    cells: [r.title, label(r.status, dry), `${(r.ms / 1000).toFixed(1)} s`, r.detail + (r.status === 'failed' && r.command ? ` [${r.command}]` : '')],
    style: RESULT_STYLES[r.status](chalk),
  }));
  const head = ['stage', 'result', 'time', 'details'];
  const widths = [0, 1, 2].map((i) => Math.max(head[i]!.length, ...rows.map((row) => row.cells[i]!.length)));
  // Cells are padded outside their colour, so escape codes take no room and trailing blanks still trim.
  const fmt = (cells: string[], paintResult: (text: string) => string = (text) => text): string =>
    `${cells.slice(0, 3).map((cell, i) => (i === 1 ? paintResult(cell) : cell) + ' '.repeat(widths[i]! - cell.length)).join('  ')}  ${cells[3]}`.trimEnd();
  const body = rows.map((row) => fmt(row.cells, row.style));
  return `\n${chalk.bold(fmt(head))}\n${fmt(widths.map((w) => '-'.repeat(w)).concat('-------'))}\n${body.join('\n')}\n\n`;
}
