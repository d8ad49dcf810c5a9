// Guest state as Proxmox reports it, for `phoenix status` and for plans that
// depend on what exists already. The queries are read-only and run in
// parallel: one pct/qm call per guest.

import type { ChalkInstance } from 'chalk';
import { chalkFor } from '../core/log.mts';
import { toolFor } from './guest-tool.mts';
import type { Graph } from '../config/graph.mts';
import type { GuestStatus } from './guest-tool.mts';
import type { PhoenixConfig } from '../config/load.mts';

export async function guestStates(graph: Graph, ids: readonly string[]): Promise<Map<string, GuestStatus>> {
  const entries = await Promise.all(
    ids.map(async (id): Promise<[string, GuestStatus]> => {
      const node = graph.get(id);
      if (!node) return [id, 'absent'];
      return [id, await toolFor(node.kind).status(id)];
    }),
  );
  return new Map(entries);
}

type ShownState = GuestStatus | 'template';

const STATE_STYLES: Record<ShownState, (chalk: ChalkInstance) => ChalkInstance> = {
  running: (chalk) => chalk.green,
  stopped: (chalk) => chalk.yellow,
  absent: (chalk) => chalk.red,
  template: (chalk) => chalk.blue,
};

/**
 * The table `phoenix status` and the managers' `status` print on stdout.
 * Colour (the header in bold, each state in its own colour) only when
 * `chalk` colours: by default when stdout is a terminal and NO_COLOR is unset.
 */
export function formatStatusTable(graph: Graph, config: PhoenixConfig, ids: readonly string[], states: ReadonlyMap<string, GuestStatus>, chalk: ChalkInstance = chalkFor(process.stdout)): string {
  const rows = ids.map((id) => {
    const node = graph.get(id);
    const state = states.get(id) ?? 'absent';
    const shown: ShownState = node?.isTemplate && state !== 'absent' ? 'template' : state;
    return { cells: [id, node?.kind ?? '?', String(config.guest(id)?.config.name ?? '')], state: shown };
  });
  const head = ['ID', 'KIND', 'NAME'];
  const widths = head.map((title, col) => Math.max(title.length, ...rows.map((row) => row.cells[col]!.length)));
  // Cells are padded before they are coloured: escape codes take no room on screen.
  const line = (cells: string[], last: string): string => [...cells.map((cell, col) => cell.padEnd(widths[col]!)), last].join('  ');
  return [chalk.bold(line(head, 'STATE')), ...rows.map((row) => line(row.cells, STATE_STYLES[row.state](chalk)(row.state)))].join('\n') + '\n';
}
