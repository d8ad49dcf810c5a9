// Guest state as Proxmox reports it, for `phoenix status` and for plans that
// depend on what exists already. The queries are read-only and run in
// parallel: one pct/qm call per guest.

import * as pct from './pct.mts';
import * as qm from './qm.mts';
import type { Graph } from './graph.mts';
import type { GuestStatus } from './pct.mts';
import type { PhoenixConfig } from './config.mts';

export async function guestStates(graph: Graph, ids: readonly string[]): Promise<Map<string, GuestStatus>> {
  const entries = await Promise.all(
    ids.map(async (id): Promise<[string, GuestStatus]> => {
      const node = graph.get(id);
      if (!node) return [id, 'absent'];
      return [id, node.kind === 'lxc' ? await pct.status(id) : await qm.status(id)];
    }),
  );
  return new Map(entries);
}

export function formatStatusTable(graph: Graph, config: PhoenixConfig, ids: readonly string[], states: ReadonlyMap<string, GuestStatus>): string {
  const rows = [['ID', 'KIND', 'NAME', 'STATE']];
  for (const id of ids) {
    const node = graph.get(id);
    const name = config.guest(id)?.config.name ?? '';
    const state = states.get(id) ?? 'absent';
    rows.push([id, node?.kind ?? '?', String(name), node?.isTemplate && state !== 'absent' ? 'template' : state]);
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  return rows.map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0))).join('  ')).join('\n') + '\n';
}
