// Checks made from inside the simulated guests, as an operator would make
// them on a real node: the container starts (and starts again) with its id
// maps, and each certificate key can be read there by the user who needs it.

import type { SimHost } from '../simhost/index.mts';

export interface KeyUse {
  ctid: string;
  /** The key as the container sees it. */
  file: string;
  /** Who must be able to read it (root for nginx's and Traefik's masters). */
  user: string;
  group?: string;
}

/** Problems found, one line each; empty when all is well. */
export function problemsInside(host: SimHost, containers: readonly string[], keys: readonly KeyUse[]): string[] {
  const problems: string[] = [];
  for (const id of containers) {
    const status = host.run('pct', ['status', id]).stdout.trim();
    if (status !== 'status: running') {
      problems.push(`CT ${id}: ${status || 'no status'}`);
      continue;
    }
    // A restart proves the id maps and the bind mounts are acceptable to LXC.
    const stop = host.run('pct', ['stop', id]);
    const start = host.run('pct', ['start', id]);
    if (stop.code !== 0 || start.code !== 0) problems.push(`CT ${id} does not start again: ${(stop.stderr + start.stderr).trim()}`);
    const exec = host.run('pct', ['exec', id, '--', 'true']);
    if (exec.code !== 0) problems.push(`CT ${id}: a command inside fails: ${exec.stderr.trim()}`);
  }
  for (const key of keys) {
    const argv = key.user === 'root'
      ? ['exec', key.ctid, '--', 'test', '-r', key.file]
      : ['exec', key.ctid, '--', 'setpriv', `--reuid=${key.user}`, `--regid=${key.group ?? key.user}`, '--init-groups', '--', 'test', '-r', key.file];
    const result = host.run('pct', argv);
    if (result.code !== 0) problems.push(`CT ${key.ctid}: ${key.user} cannot read ${key.file} ${result.stderr.trim()}`);
  }
  return problems;
}
