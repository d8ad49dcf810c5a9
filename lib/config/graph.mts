// The dependency graph over all guests, LXC and VM alike. A guest depends on
// its clone source first, then on each entry of `dependencies`, in manifest
// order. The walk is the bash toolkit's (depth-first, dependencies before
// dependents, targets in the order given) so orders stay familiar; what
// changed is that an unknown id or a cycle is a precise error instead of a
// warning or a bare "cycle involving X", and that independent guests can be
// grouped into waves that run in parallel.

import { CycleError, UsageError } from '../core/errors.mts';

export type GuestKind = 'lxc' | 'vm';

export interface GuestNode {
  id: string;
  kind: GuestKind;
  /** Clone source first, then `dependencies`, as in the manifest. */
  edges: string[];
  isTemplate: boolean;
  /** Boot order from the manifest (LXC and VM alike); 999 when absent. */
  bootOrder: number;
  /**
   * Where the guest is defined, so an error about its edges names the file
   * and the JSON pointer: `edges[i]` is the pointer of `edges[i]` above.
   */
  origin?: { file: string; pointer: string; edges: string[] };
}

export type Graph = ReadonlyMap<string, GuestNode>;

export function buildGraph(nodes: Iterable<GuestNode>): Graph {
  const graph = new Map<string, GuestNode>();
  for (const node of nodes) graph.set(node.id, node);
  return graph;
}

/** Ids that are named (as targets or edges) but are no guest. */
export function unknownIds(graph: Graph, ids: readonly string[]): string[] {
  return ids.filter((id) => !graph.has(id));
}

/** Throw a usage error naming every target that is no guest. */
export function assertKnown(graph: Graph, targets: readonly string[]): void {
  const unknown = unknownIds(graph, targets);
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown guest id${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (not in the LXC or VM manifest)`,
      { hint: `known ids: ${[...graph.keys()].join(' ')}` },
    );
  }
}

/**
 * Every guest reachable from the targets, each after everything it depends
 * on. A dependency that is no guest is reported with the guest that names it.
 */
export function resolveOrder(graph: Graph, targets: readonly string[]): string[] {
  assertKnown(graph, targets);
  const order: string[] = [];
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();

  const visit = (id: string, from: string | undefined): void => {
    if (done.has(id)) return;
    if (onStack.has(id)) throw cycleError([...stack.slice(stack.indexOf(id)), id], graph);
    const node = graph.get(id);
    if (!node) throw new UsageError(`guest ${from} depends on ${id}, which is in neither the LXC nor the VM manifest`);
    stack.push(id);
    onStack.add(id);
    for (const edge of node.edges) visit(edge, id);
    stack.pop();
    onStack.delete(id);
    done.add(id);
    order.push(id);
  };

  for (const target of targets) visit(target, undefined);
  return order;
}

/** A CycleError that names the manifest and entry of the guest whose edge closes the cycle. */
function cycleError(cycle: string[], graph: Graph): CycleError {
  const error = new CycleError(cycle);
  const closing = graph.get(cycle[cycle.length - 2] ?? '');
  if (closing?.origin) {
    const edge = closing.edges.indexOf(cycle[cycle.length - 1] ?? '');
    const pointer = closing.origin.edges[edge] ?? closing.origin.pointer;
    error.message = `${closing.origin.file} at ${pointer}: ${error.message}`;
  }
  return error;
}

/**
 * Split an ordered set of guests into waves: each wave holds the guests whose
 * dependencies inside the set are all in earlier waves, so a wave's guests
 * can run in parallel. Dependencies outside the set count as satisfied.
 */
export function waves(graph: Graph, ids: readonly string[]): string[][] {
  const inSet = new Set(ids);
  const level = new Map<string, number>();
  const levelOf = (id: string): number => {
    const known = level.get(id);
    if (known !== undefined) return known;
    const node = graph.get(id);
    let depth = 0;
    for (const edge of node?.edges ?? []) if (inSet.has(edge)) depth = Math.max(depth, levelOf(edge) + 1);
    level.set(id, depth);
    return depth;
  };
  const result: string[][] = [];
  for (const id of ids) {
    const depth = levelOf(id);
    (result[depth] ??= []).push(id);
  }
  return result.filter((wave) => wave.length > 0);
}

/** Length of the longest dependency chain inside the set (for bench reports). */
export function criticalPathLength(graph: Graph, ids: readonly string[]): number {
  return waves(graph, ids).length;
}

/**
 * Start order for LetsGo: by manifest boot order, ties by id as a number,
 * templates left out (Proxmox refuses to start them). VMs keep their own
 * boot_order, which the bash replaced with 999.
 */
export function bootOrder(graph: Graph, ids: readonly string[]): string[] {
  return ids
    .map((id) => graph.get(id))
    .filter((node): node is GuestNode => node !== undefined && !node.isTemplate)
    .sort((a, b) => a.bootOrder - b.bootOrder || Number(a.id) - Number(b.id))
    .map((node) => node.id);
}
