// Typed wrappers for the cluster-level tools: pvesh (the API from the shell)
// and pve-firewall.

import { run, query, type CommandResult } from '../core/runner.mts';

export async function pveshGet<T = unknown>(apiPath: string): Promise<T> {
  const result = await query({ cmd: 'pvesh', args: ['get', apiPath, '--output-format', 'json'], quiet: true });
  return JSON.parse(result.stdout) as T;
}

/** The node name of this host, as the API knows it. */
export async function nodeName(): Promise<string> {
  const nodes = await pveshGet<Array<{ node: string }>>('/nodes');
  const first = nodes[0];
  if (!first) throw new Error('pvesh lists no node');
  return first.node;
}

/** Parse the rule files and report problems; changes nothing. */
export function firewallCompile(): Promise<CommandResult> {
  return query({ cmd: 'pve-firewall', args: ['compile'], quiet: true });
}

export async function firewallStatus(): Promise<string> {
  return (await query({ cmd: 'pve-firewall', args: ['status'], quiet: true })).stdout.trim();
}

export function firewallRestart(): Promise<CommandResult> {
  return run({ cmd: 'pve-firewall', args: ['restart'] });
}
