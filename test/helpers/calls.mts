// Reading the simulated host's call log: which calls changed something.

import type { CallRecord } from '../simhost/index.mts';

const READ_ONLY: Record<string, readonly string[]> = {
  pct: ['status', 'config', 'list', 'listsnapshot', 'pending', 'df'],
  qm: ['status', 'config', 'list', 'listsnapshot', 'pending', 'agent', 'guest exec-status'],
  pvesm: ['status', 'list', 'path'],
  pveam: ['list', 'available'],
  pvesh: ['get'],
  'pve-firewall': ['status', 'compile'],
  zfs: ['list', 'get'],
  zpool: ['list', 'status'],
};

export function isMutating(call: CallRecord): boolean {
  const verbs = READ_ONLY[call.tool] ?? [];
  const [first = '', second = ''] = call.argv;
  if (call.tool === 'qm' && first === 'guest') return !verbs.includes(`guest ${second}`);
  if (call.tool === 'pct' && first === 'exec') return true;
  return !verbs.includes(first);
}

export function transcript(calls: readonly CallRecord[], options: { mutatingOnly?: boolean } = {}): string {
  return calls
    .filter((c) => !options.mutatingOnly || isMutating(c))
    .map((c) => `${[c.tool, ...c.argv].join(' ')}${c.exit === 0 ? '' : `  => exit ${c.exit}`}`)
    .join('\n')
    .concat('\n');
}
