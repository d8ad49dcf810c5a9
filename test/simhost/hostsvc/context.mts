// What the simulated host's own tools share: how a call reaches them and
// where the host's files are.

import path from 'node:path';

export interface HostToolContext {
  tool: string;
  argv: string[];
  /** The simulator's state directory. */
  root: string;
  /** Where the host's own files are (PHOENIX_HOST_ROOT, default <state>/hostfs). */
  hostRoot: string;
  out(text: string): void;
  err(text: string): void;
}

export function hostRootOf(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.PHOENIX_HOST_ROOT || path.join(root, 'hostfs'));
}

/** A host path (as the tools and configs name it) inside the simulated host's tree. */
export function onHostRoot(hostRoot: string, hostPath: string): string {
  return path.join(hostRoot, path.posix.resolve('/', hostPath));
}
