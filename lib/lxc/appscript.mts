// A container's application script (`application_script` in the manifest).
//
// - A port (scripts/<name>.mts) runs on the host, like every other Phoenix
//   script, and works on the container through pct: runScript(name, [ctid]).
// - A legacy bash script keeps the upstream mechanism: it is staged with
//   what it reads into /tmp/phoenix_run inside the container and run there.
//   What it reads: the common utilities, the three manifests, and a few
//   files some scripts expect (declared below by script name, not by CTID).
//   The hypervisor manifest goes in with every secret-looking value removed,
//   and nothing else secret is staged: root in the container can read
//   whatever is staged there.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { resolveScript, runScript, type ResolvedScript } from '../core/bridge.mts';
import { info, warn } from '../core/log.mts';
import * as pct from '../pve/pct.mts';
import { writeFileAtomic } from '../core/fs.mts';
import type { PhoenixConfig } from '../config/load.mts';
import { withoutSecrets } from '../core/redact.mts';
import fse from 'fs-extra';


export const STAGING_DIR = '/tmp/phoenix_run';

export interface StagedFile {
  /** Relative to the Phoenix base directory (then to the legacy tree). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
}

/**
 * Extra files a legacy application script reads, by script name. Missing
 * sources are skipped: they are inputs the script may do without (the
 * Traefik dynamic file only exists after a `sync all`). Everything else the
 * upstream staged by CTID (the root CA copy, four certificates and keys, the
 * Traefik generator and template) was never read by any script and is gone.
 */
export const LEGACY_STAGED_FILES: Readonly<Record<string, readonly StagedFile[]>> = {
  'phoenix_hypervisor_lxc_101.sh': [
    { source: 'etc/nginx/nginx.conf', target: `${STAGING_DIR}/nginx.conf` },
    { source: 'etc/nginx/sites-available/gateway', target: `${STAGING_DIR}/sites-available/gateway` },
    { source: 'etc/nginx/stream.d/stream-gateway.conf', target: `${STAGING_DIR}/stream.d/stream-gateway.conf` },
  ],
  'phoenix_hypervisor_lxc_102.sh': [{ source: 'etc/traefik/dynamic_conf.yml', target: '/etc/traefik/dynamic/dynamic_conf.yml' }],
};


export interface AppScriptContext {
  config: PhoenixConfig;
  baseDir: string;
  legacyDir: string | undefined;
  useLegacy: readonly string[];
  env: Record<string, string>;
  hostRoot: string;
}

export function resolveAppScript(name: string, ctx: Pick<AppScriptContext, 'legacyDir' | 'useLegacy'>): ResolvedScript {
  return resolveScript(name, { legacyDir: ctx.legacyDir, useLegacy: ctx.useLegacy });
}

/** Content digest of what would run: re-run the script only when it changed. */
export async function scriptDigest(script: ResolvedScript): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(fs.readFileSync(script.path)).digest('hex').slice(0, 16);
}

export async function runApplicationScript(ctid: string, name: string, ctx: AppScriptContext): Promise<void> {
  const script = resolveAppScript(name, ctx);
  info(`Running application script ${name} for CTID ${ctid} (${script.kind === 'port' ? 'port, on the host' : 'bash, inside the container'})`);
  if (script.kind === 'port') {
    const result = await runScript(name, [ctid], { legacyDir: ctx.legacyDir, useLegacy: ctx.useLegacy, env: ctx.env });
    if (result.code !== 0) throw new PhoenixError(`Application script '${name}' failed for CTID ${ctid} (exit ${result.code}).`);
    return;
  }
  await runLegacyInside(ctid, name, script, ctx);
}

async function runLegacyInside(ctid: string, name: string, script: ResolvedScript, ctx: AppScriptContext): Promise<void> {
  const staged: Array<{ from: string; to: string; perms: string }> = [];
  // Application scripts live at the top of bin/, next to the library they source.
  const utils = path.join(path.dirname(script.path), 'phoenix_hypervisor_common_utils.sh');
  if (fs.existsSync(utils)) staged.push({ from: utils, to: `${STAGING_DIR}/phoenix_hypervisor_common_utils.sh`, perms: '0644' });
  else warn(`phoenix_hypervisor_common_utils.sh not found next to ${script.path}; ${name} may fail to source it`);
  staged.push({ from: script.path, to: `${STAGING_DIR}/${path.basename(name)}`, perms: '0755' });
  staged.push({ from: ctx.config.paths.lxc, to: `${STAGING_DIR}/phoenix_lxc_configs.json`, perms: '0644' });
  if (fs.existsSync(ctx.config.paths.vm)) staged.push({ from: ctx.config.paths.vm, to: `${STAGING_DIR}/phoenix_vm_configs.json`, perms: '0644' });
  for (const file of LEGACY_STAGED_FILES[path.basename(name)] ?? []) {
    const from = [ctx.baseDir, ctx.legacyDir].filter((d): d is string => d !== undefined).map((d) => path.join(d, file.source)).find((f) => fs.existsSync(f));
    if (from) staged.push({ from, to: file.target, perms: '0644' });
    else info(`${file.source} not found; ${name} runs without it`);
  }

  const sanitized = writeSanitizedHypervisorConfig(ctid, ctx.config, ctx.hostRoot);
  if (sanitized) staged.push({ from: sanitized, to: `${STAGING_DIR}/phoenix_hypervisor_config.json`, perms: '0600' });
  try {
    const dirs = [...new Set(staged.map((f) => path.posix.dirname(f.to)))];
    await pct.exec(ctid, ['mkdir', '-p', ...dirs], { quiet: true });
    for (const file of staged) await pct.push(ctid, file.from, file.to, { perms: file.perms });
    const result = await pct.exec(ctid, [`${STAGING_DIR}/${path.basename(name)}`, ctid], { stdio: 'inherit', allowFailure: true, timeoutMs: 0 });
    if (result.code !== 0) throw new PhoenixError(`Application script '${name}' failed for CTID ${ctid} (exit ${result.code}).`);
  } finally {
    if (sanitized && !isDryRun()) fs.rmSync(sanitized, { force: true });
    const cleanup = await pct.exec(ctid, ['rm', '-rf', STAGING_DIR], { allowFailure: true, quiet: true }).catch(() => undefined);
    if (cleanup && cleanup.code !== 0) warn(`could not remove ${STAGING_DIR} in CT ${ctid}`);
  }
}

/** The per-container staging copy; the guest lock keeps two runs off the same name. */
function writeSanitizedHypervisorConfig(ctid: string, config: PhoenixConfig, hostRoot: string): string | undefined {
  if (!fs.existsSync(config.paths.hypervisor)) return undefined;
  const file = path.join(hostRoot, 'var', 'lib', 'phoenix', 'staging', `${ctid}.phoenix_hypervisor_config.json`);
  const doc = fse.readJsonSync(config.paths.hypervisor) as unknown;
  writeFileAtomic(file, `${JSON.stringify(withoutSecrets(doc), null, 2)}\n`, { mode: 0o600, dirMode: 0o700 });
  return file;
}
