// Editing a container's Proxmox config file (<PHOENIX_PVE_DIR>/lxc/<id>.conf)
// for the raw lxc.* lines pct cannot set. The file holds the live config
// first, then optional [pve:pending] and [snapshot] sections; a line appended
// at the end of the file would land in the last snapshot instead of the live
// config. So lines are added at the end of the live section and
// removed from it only, and the file is replaced atomically.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import { parseRawLine, formatRawLine, type RawPlan } from './plan.mts';

/** Proxmox keeps guest configs 0640 root:www-data; pmxcfs accepts no other mode. */
const PVE_CONFIG_MODE = 0o640;

export function confPath(pveDir: string, ctid: string): string {
  return path.join(pveDir, 'lxc', `${ctid}.conf`);
}

/** Apply a raw-line plan to config text; everything outside the live section stays byte for byte. */
export function editLiveSection(text: string, plan: RawPlan): string {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const headerAt = lines.findIndex((line) => line.startsWith('['));
  const live = headerAt < 0 ? lines : lines.slice(0, headerAt);
  const rest = headerAt < 0 ? [] : lines.slice(headerAt);
  while (live.length > 0 && live[live.length - 1]?.trim() === '') live.pop();

  for (const gone of plan.remove) {
    const at = live.findIndex((line) => {
      const raw = parseRawLine(line);
      return raw !== undefined && raw.key === gone.key && raw.value === gone.value;
    });
    if (at >= 0) live.splice(at, 1);
  }
  for (const line of plan.add) live.push(formatRawLine(line));

  const out = rest.length > 0 ? [...live, '', ...rest] : live;
  return `${out.join('\n')}\n`;
}

/** Rewrite the config file with the plan applied; 'unchanged' when there was nothing to do. */
export function applyRawPlan(pveDir: string, ctid: string, plan: RawPlan): WriteOutcome {
  if (plan.add.length === 0 && plan.remove.length === 0) return 'unchanged';
  const file = confPath(pveDir, ctid);
  // Read just before writing: pct set rewrote this file a moment ago.
  const before = fs.readFileSync(file, 'utf8');
  const after = editLiveSection(before, plan);
  if (after === before) return 'unchanged';
  return writeFileAtomic(file, after, { mode: PVE_CONFIG_MODE });
}
