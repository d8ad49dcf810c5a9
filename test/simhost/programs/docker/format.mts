// Output: --format templates (Go text/template as docker users write it),
// `json`, and tables padded like docker's tabwriter.

import { Fail } from './state.mts';

// ---------------------------------------------------------------------------
// --format: the part of Go's text/template docker users write

function lookup(data: unknown, pathExpr: string): unknown {
  if (pathExpr === '.') return data;
  let value: unknown = data;
  for (const part of pathExpr.replace(/^\./, '').split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function goString(value: unknown): string {
  if (value === undefined) return '<no value>';
  if (value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(goString).join(' ')}]`;
  return `map[${Object.entries(value as Record<string, unknown>)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}:${goString(v)}`)
    .join(' ')}]`;
}

function evalAction(action: string, data: unknown): string {
  const words = action.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  const arg = (w: string | undefined): unknown => (w === undefined ? undefined : w.startsWith('"') ? JSON.parse(w) : lookup(data, w));
  const [head, ...rest] = words;
  if (head === undefined) throw new Fail(1, `template parsing error: template: :1: missing value for command\n`);
  if (head.startsWith('.')) return goString(lookup(data, head));
  switch (head) {
    case 'json':
      return JSON.stringify(arg(rest[0]) ?? null);
    case 'index': {
      const container = arg(rest[0]) as Record<string, unknown> | undefined;
      const key = arg(rest[1]) as string;
      return goString(container?.[key] ?? (container ? '' : undefined));
    }
    case 'join': {
      const list = (arg(rest[0]) as unknown[] | undefined) ?? [];
      return list.map(goString).join(String(arg(rest[1]) ?? ''));
    }
    case 'lower':
      return goString(arg(rest[0])).toLowerCase();
    case 'upper':
      return goString(arg(rest[0])).toUpperCase();
    case 'println':
      return `${rest.map((w) => goString(arg(w))).join(' ')}\n`;
    default:
      throw new Fail(1, `template parsing error: template: :1: function "${head}" not defined\n`);
  }
}

export function renderFormat(format: string, data: unknown): string {
  const tpl = format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return tpl.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_m, action: string) => evalAction(action, data));
}

export function formatRows(format: string | undefined, rows: readonly unknown[], table: () => string): string {
  if (format === undefined || format === '' || format === 'table') return table();
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const body = format.startsWith('table ') ? format.slice(6) : format;
  return rows.map((r) => `${renderFormat(body, r)}\n`).join('');
}

/** Columns padded like docker's tabwriter (3 spaces between columns). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join('')
      .trimEnd();
  return [header, ...rows].map((r) => `${line(r)}\n`).join('');
}
