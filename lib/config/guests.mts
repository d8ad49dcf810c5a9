// The guests of both manifests as graph nodes: one view over LXC and VM, so
// the CLI and the managers agree on ids, kinds, edges and boot order.

import { buildGraph, type Graph, type GuestNode } from './graph.mts';
import type { PhoenixConfig } from './types.mts';

type Edges = { edges: string[]; pointers: string[] };

export function guestNodes(config: PhoenixConfig): GuestNode[] {
  const nodes: GuestNode[] = [];
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id];
    if (!ct) continue;
    const pointer = `/lxc_configs/${id.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const { edges, pointers } = edgeList(pointer, 'clone_from_ctid', ct.clone_from_ctid, ct.dependencies);
    nodes.push({
      id,
      kind: 'lxc',
      edges,
      isTemplate: ct.is_template === true,
      bootOrder: typeof ct.boot_order === 'number' ? ct.boot_order : 999,
      origin: { file: config.paths.lxc, pointer, edges: pointers },
    });
  }
  config.vm.vms.forEach((vm, i) => {
    const pointer = `/vms/${i}`;
    const { edges, pointers } = edgeList(pointer, 'clone_from_vmid', vm.clone_from_vmid, vm.dependencies);
    nodes.push({
      id: String(vm.vmid),
      kind: 'vm',
      edges,
      isTemplate: vm.is_template === true,
      bootOrder: typeof vm.boot_order === 'number' ? vm.boot_order : 999,
      origin: { file: config.paths.vm, pointer, edges: pointers },
    });
  });
  return nodes;
}

export function guestGraph(config: PhoenixConfig): Graph {
  return buildGraph(guestNodes(config));
}

/** All guest ids as the bash listed them: LXC keys, then VM ids in file order. */
export function allGuestIds(config: PhoenixConfig): string[] {
  return [...config.lxcIds(), ...config.vmIds()];
}

/** The clone source, then the dependencies (each once), with the JSON pointer of each. */
function edgeList(
  base: string,
  cloneKey: string,
  cloneFrom: string | number | null | undefined,
  dependencies: readonly (string | number)[] | undefined,
): Edges {
  const edges: string[] = [];
  const pointers: string[] = [];
  if (cloneFrom !== undefined && cloneFrom !== null && String(cloneFrom) !== '') {
    edges.push(String(cloneFrom));
    pointers.push(`${base}/${cloneKey}`);
  }
  (dependencies ?? []).forEach((dep, j) => {
    if (edges.includes(String(dep))) return;
    edges.push(String(dep));
    pointers.push(`${base}/dependencies/${j}`);
  });
  return { edges, pointers };
}
