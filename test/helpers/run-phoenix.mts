// The whole CLI end to end on a simulated host, as `make sync` runs it: a
// base directory of manifests, the environment a run needs, and LetsGo run
// asynchronously (so an in-process Portainer stand-in keeps answering).

import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { SimHost } from '../simhost/index.mts';
import { PROJECT_ROOT } from '../../lib/core/bridge.mts';

export const CLI = path.join(PROJECT_ROOT, 'scripts', 'phoenix-cli.mjs');
const CORPUS = path.join(PROJECT_ROOT, 'test', 'fixtures', 'compat');

/** Environment for phoenix-cli on the simulated host, with `base` as PHOENIX_BASE_DIR and logs under `work`. */
export function cliEnv(host: SimHost, work: string, base: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    ...host.env,
    PHOENIX_BASE_DIR: base,
    MAIN_LOG_FILE: path.join(work, 'phoenix.log'),
    PHOENIX_LOCK_FILE: path.join(work, 'phoenix.lock'),
    PHOENIX_SKIP_GUEST_VERIFY: 'true',
    PHOENIX_START_RETRY_DELAY_MS: '100',
    PHOENIX_POLL_INTERVAL_MS: '100',
    NO_SPINNER: '1',
  };
  for (const key of ['HYPERVISOR_CONFIG_FILE', 'LXC_CONFIG_FILE', 'VM_CONFIG_FILE', 'PHOENIX_DRY_RUN', 'PHOENIX_USE_LEGACY', 'PHOENIX_LEGACY_DIR', 'PHOENIX_RECORD', 'PHOENIX_HOST_ROOT']) delete env[key];
  return { ...env, ...extra };
}

/**
 * The bash toolkit's layout from test/fixtures/compat: manifests in etc/,
 * the Traefik template in etc/traefik, stacks and cloud-init beside them.
 * Returns what its core_paths need: they name the bash install
 * (/usr/local/phoenix_hypervisor/etc/…), so the copies are pointed at.
 */
export function compatBase(base: string): Record<string, string> {
  fs.cpSync(path.join(CORPUS, 'etc'), path.join(base, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(base, 'etc', 'traefik'), { recursive: true });
  fs.copyFileSync(path.join(CORPUS, 'traefik.yml.template'), path.join(base, 'etc', 'traefik', 'traefik.yml.template'));
  for (const dir of ['stacks', 'cloud-init']) fs.cpSync(path.join(PROJECT_ROOT, 'etc', dir), path.join(base, 'etc', dir), { recursive: true });
  return {
    LXC_CONFIG_FILE: path.join(base, 'etc', 'phoenix_lxc_configs.json'),
    VM_CONFIG_FILE: path.join(base, 'etc', 'phoenix_vm_configs.json'),
  };
}

export interface Recorded {
  script: string;
  cmd: string;
  args: string[];
  mutating: boolean;
  skipped: boolean;
}

/** `phoenix LetsGo`, every command recorded in `record`; killed after 240 s. */
export function letsGo(env: Record<string, string>, record: string): Promise<{ code: number; stderr: string; commands: Recorded[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'LetsGo'], { env: { ...env, PHOENIX_RECORD: record }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const commands = fs.existsSync(record) ? fs.readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Recorded) : [];
      resolve({ code: code ?? -1, stderr, commands });
    });
  });
}

/** The mutating commands a run really issued, as `script: command args`. */
export const changesOf = (commands: readonly Recorded[]): string[] => commands.filter((c) => c.mutating && !c.skipped).map((c) => `${c.script}: ${c.cmd} ${c.args.join(' ')}`);
