// The closing report of a renewal run: one line per entry saying what
// happened to it and why, so an operator reading a timer's journal sees at
// once which certificate failed and for what reason.

import { error, info, success, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';

export type EntryOutcome = 'renewed' | 'valid' | 'failed';
export type DeliveryOutcome = 'delivered' | 'pending' | 'up-to-date' | 'skipped' | 'failed';

export interface EntryReport {
  name: string;
  outcome: EntryOutcome;
  /** Why it was renewed, why it is valid (until when), or why it failed. */
  why: string;
  delivery?: DeliveryOutcome;
  deliveryWhy?: string;
}

export interface RenewalReport {
  /** Set when the whole run was skipped (no CA container), with the reason. */
  skipped?: string;
  entries: EntryReport[];
}

export function failures(report: RenewalReport): EntryReport[] {
  return report.entries.filter((e) => e.outcome === 'failed');
}

/** Whether the run changed (or, in a dry-run, would change) anything. */
export function somethingHappened(report: RenewalReport): boolean {
  return report.entries.some((e) => e.outcome !== 'valid' || e.delivery === 'delivered' || e.delivery === 'failed');
}

export function summaryLines(report: RenewalReport): string[] {
  const count = (o: EntryOutcome) => report.entries.filter((e) => e.outcome === o).length;
  // The run that made the report is the one printing it: a dry run says what it would do.
  const dryRun = isDryRun();
  const renewedWord = dryRun ? 'to renew' : 'renewed';
  const lines = [`Summary: ${count('renewed')} ${renewedWord}, ${count('valid')} valid, ${count('failed')} failed (of ${report.entries.length})`];
  const width = Math.max(0, ...report.entries.map((e) => e.name.length));
  for (const entry of report.entries) {
    const label = entry.outcome === 'renewed' && dryRun ? 'to renew' : entry.outcome;
    let line = `  ${label.padEnd(8)} ${entry.name.padEnd(width)}  ${entry.why}`;
    if (entry.delivery && entry.delivery !== 'up-to-date') line += `; ${dryRun && entry.delivery === 'delivered' ? 'to deliver' : entry.delivery}${entry.deliveryWhy ? `: ${entry.deliveryWhy}` : ''}`;
    lines.push(line);
  }
  return lines;
}

export function logSummary(report: RenewalReport): void {
  if (report.skipped) return;
  const lines = summaryLines(report);
  const bad = failures(report).length > 0;
  (bad ? error : success)(lines[0] as string);
  for (const [i, line] of lines.slice(1).entries()) {
    const entry = report.entries[i] as EntryReport;
    if (entry.outcome === 'failed') error(line);
    else if (entry.delivery === 'pending' || entry.delivery === 'failed') warn(line);
    else info(line);
  }
  if (!somethingHappened(report)) info('Nothing to do: every certificate is valid and in place.');
}
