// Durations and times as step takes them (Go durations, RFC 3339) and prints them.

import { StepFailure } from './layout.mts';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3600_000 };

/** A Go duration (`24h`, `1h30m`, `-5m`, `90s`) in ms; undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^([+-])?((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text.trim());
  if (!m) return text.trim() === '0' ? 0 : undefined;
  let total = 0;
  for (const part of m[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(part[1]) * UNIT_MS[part[2]!]!;
  return m[1] === '-' ? -total : total;
}

/** A --not-before/--not-after value: a duration from `now`, or an RFC 3339 time. */
export function parseTimeFlag(flag: string, text: string, now: number): Date {
  const duration = parseDuration(text);
  if (duration !== undefined) return new Date(now + duration);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    const at = new Date(text);
    if (!Number.isNaN(at.getTime())) return at;
  }
  throw new StepFailure(`flag '--${flag}' value '${text}' is not a valid time or duration (e.g. 24h, 90m, 2026-12-01T00:00:00Z)`);
}

export function formatDuration(ms: number): string {
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}
