// The guests of both manifests as graph nodes: one view over LXC and VM, so
// the CLI and the managers agree on ids, kinds, edges and boot order.

import { buildGraph, type Graph, type GuestNode } from './graph.mts';
import type { PhoenixConfig } from './config.mts';

export function guestNodes(config: PhoenixConfig): GuestNode[] {
  const nodes: GuestNode[] = [];
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id];
    if (!ct) continue;
    nodes.push({
      id,
      kind: 'lxc',
      edges: edgeList(ct.clone_from_ctid, ct.dependencies),
      isTemplate: ct.is_template === true,
      bootOrder: typeof ct.boot_order === 'number' ? ct.boot_order : 999,
    });
  }
  for (const vm of config.vm.vms) {
    nodes.push({
      id: String(vm.vmid),
      kind: 'vm',
      edges: edgeList(vm.clone_from_vmid, vm.dependencies),
      isTemplate: vm.is_template === true,
      bootOrder: typeof vm.boot_order === 'number' ? vm.boot_order : 999,
    });
  }
  return nodes;
}

export function guestGraph(config: PhoenixConfig): Graph {
  return buildGraph(guestNodes(config));
}

/** All guest ids as the bash listed them: LXC keys, then VM ids in file order. */
export function allGuestIds(config: PhoenixConfig): string[] {
  return [...config.lxcIds(), ...config.vmIds()];
}

function edgeList(cloneFrom: string | number | null | undefined, dependencies: readonly (string | number)[] | undefined): string[] {
  const edges: string[] = [];
  if (cloneFrom !== undefined && cloneFrom !== null && String(cloneFrom) !== '') edges.push(String(cloneFrom));
  for (const dep of dependencies ?? []) if (!edges.includes(String(dep))) edges.push(String(dep));
  return edges;
}
