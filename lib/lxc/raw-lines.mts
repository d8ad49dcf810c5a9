// The raw `lxc.*` lines of a container's config: the ones the manifest asks
// for (its lxc_options, AppArmor, GPU devices), parsed and written in the
// form Proxmox keeps them, and the plan that adds and removes only Phoenix's
// own lines.

import { type LxcConfig } from '../config/types.mts';
import { idMapLines } from '../config/id-maps.mts';
import { matching, oneLine } from '../config/field-values.mts';

export interface RawLine {
  key: string;
  value: string;
}

export interface RawPlan {
  add: RawLine[];
  remove: RawLine[];
}

export const APPARMOR_PROFILE = /^[A-Za-z0-9_][A-Za-z0-9_.:/+-]*$/;

const RAW_LINE = /^(lxc\.[A-Za-z0-9_.-]+)\s*(?::|=)\s*(.*?)\s*$/;

/** `lxc.x = y` and `lxc.x: y` are the same line to Proxmox; keep the colon form. */
export function parseRawLine(line: string): RawLine | undefined {
  const match = RAW_LINE.exec(line.trim());
  return match ? { key: match[1] as string, value: match[2] as string } : undefined;
}

export function formatRawLine(line: RawLine): string {
  return `${line.key}: ${line.value}`;
}

/** Keys LXC accumulates (several lines add up); every other key takes its last value. */
const MULTI_VALUED = /^lxc\.(mount\.entry|mount\.auto|cgroup2?\.devices\.(allow|deny)|idmap|cap\.(keep|drop)|environment|hook\.[a-z.-]+|include|net\.\d+\.ipv[46]\.address|apparmor\.raw)$/;

/** Keys whose whole set of lines the manifest owns once it names any of them. */
const OWNED_WHEN_GIVEN = new Set(['lxc.idmap', 'lxc.cap.keep']);

export const GPU_DEVICE_MAJORS = ['195', '243'];

/** The raw lines a container needs, in the order they are written. */
export function desiredRawLines(ct: LxcConfig): RawLine[] {
  const lines: RawLine[] = [];
  const push = (line: RawLine) => {
    if (!lines.some((l) => l.key === line.key && l.value === line.value)) lines.push(line);
  };
  // One manifest entry is one line, whatever spaces it holds:
  // `lxc.apparmor.profile: unconfined` is one setting, not three words.
  for (const [i, entry] of (ct.lxc_options ?? []).entries()) {
    const line = parseRawLine(oneLine(`lxc_options/${i}`, entry));
    if (!line) continue;
    if (line.key === 'lxc.cap.keep' && line.value.includes(',')) {
      for (const cap of line.value.split(/[\s,]+/).filter(Boolean)) push({ key: line.key, value: cap });
    } else {
      push(line);
    }
  }
  for (const line of apparmorLines(ct)) push(line);
  for (const line of gpuLines(ct.gpu_assignment)) push(line);
  // The manifest's own maps, completed around the ids it names: LXC maps
  // nothing but the lines it is given.
  for (const value of idMapLines(ct.id_maps)) push({ key: 'lxc.idmap', value });
  return lines;
}

export function apparmorLines(ct: LxcConfig): RawLine[] {
  const profile = ct.apparmor_profile;
  if (profile === undefined || profile === '') return [];
  matching('apparmor_profile', profile, APPARMOR_PROFILE, 'an AppArmor profile name');
  const lines: RawLine[] = [{ key: 'lxc.apparmor.profile', value: profile }];
  if (profile !== 'unconfined' && ct.apparmor_manages_nesting === true) {
    lines.push({ key: 'lxc.apparmor.allow_nesting', value: '1' });
    lines.push({ key: 'lxc.include', value: '/usr/share/lxc/config/nesting.conf' });
  }
  return lines;
}

export function gpuLines(assignment: string | undefined): RawLine[] {
  if (assignment === undefined || assignment.trim() === '' || assignment.trim() === 'none') return [];
  const devices = ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools'];
  for (const index of assignment.split(',').map((s) => s.trim()).filter(Boolean)) devices.push(`/dev/nvidia${matching('gpu_assignment', index, /^\d+$/, 'GPU indices such as 0,1')}`);
  return [
    ...devices.map((dev) => ({ key: 'lxc.mount.entry', value: `${dev} ${dev.slice(1)} none bind,optional,create=file` })),
    ...GPU_DEVICE_MAJORS.map((major) => ({ key: 'lxc.cgroup2.devices.allow', value: `c ${major}:* rwm` })),
  ];
}

/**
 * Raw lines to add and remove so the live config holds the desired ones.
 * Single-valued keys are replaced; multi-valued keys only gain missing
 * lines, except those the manifest owns entirely (lxc.idmap and lxc.cap.keep
 * when given, and every lxc.net.<n>.* of a macvlan interface). Lines of keys
 * the manifest never mentions are left alone: they may be the operator's.
 */
export function planRawLines(desired: readonly RawLine[], current: readonly RawLine[], ownedPrefixes: readonly string[] = []): { plan: RawPlan; notes: string[] } {
  const add: RawLine[] = [];
  const remove: RawLine[] = [];
  const notes: string[] = [];
  const keys = [...new Set(desired.map((l) => l.key))];
  for (const key of keys) {
    const want = desired.filter((l) => l.key === key).map((l) => l.value);
    const have = current.filter((l) => l.key === key).map((l) => l.value);
    const multi = MULTI_VALUED.test(key);
    const owned = OWNED_WHEN_GIVEN.has(key) || ownedPrefixes.some((p) => key.startsWith(p));
    if (!multi && want.length > 1) notes.push(`${key} is given ${want.length} times; LXC uses the last one`);
    if (owned || !multi) {
      const kept = new Set<string>();
      for (const value of have) {
        if (want.includes(value) && !kept.has(value)) kept.add(value);
        else remove.push({ key, value });
      }
    }
    for (const value of want) if (!have.includes(value)) add.push({ key, value });
  }
  for (const line of current) {
    if (keys.includes(line.key)) continue;
    if (ownedPrefixes.some((p) => line.key.startsWith(p))) remove.push(line);
  }
  return { plan: { add, remove }, notes };
}
