// lxc-manager create-templates: the containers named in .lxc_templates
// dumped into the ISO storage as templates for later creates.

import fs from 'node:fs';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { type LxcSession, inspect, step } from './session.mts';
import { PhoenixError } from '../core/errors.mts';
import { createContainer } from './create.mts';
import { info, success } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { onHost } from '../guest/hostdirs.mts';
import { pvesmPath } from '../pve/storage.mts';
import { run } from '../core/runner.mts';

// ---------------------------------------------------------------- create-templates

/**
 * `create-templates`: for each `lxc_templates` entry `<file>: {source_ctid}`,
 * make the source container, stop it and dump it into the ISO storage's
 * template cache under that file name. The dump is written next to the
 * target and renamed into place only when complete, so an interrupted dump
 * never leaves a truncated template under the real name.
 */
export async function createTemplates(session: LxcSession): Promise<string[]> {
  info('Starting LXC template creation process...');
  const entries = Object.entries(lxcTemplates(session));
  if (entries.length === 0) {
    info('No LXC templates are defined (.lxc_templates); nothing to do.');
    return [];
  }
  const storage = session.config.hypervisor.proxmox_storage_ids?.fastData_shared_iso;
  if (!storage) throw new PhoenixError('proxmox_storage_ids.fastData_shared_iso is not set; it names the storage templates are written to.');
  const made: string[] = [];
  for (const [file, spec] of entries) {
    const source = String(spec.source_ctid);
    const target = onHost(session.options.hostRoot, await pvesmPath(`${storage}:vztmpl/${file}`));
    if (fs.existsSync(target)) {
      info(`Template '${file}' already exists. Skipping.`);
      continue;
    }
    info(`Creating template '${file}' from CTID ${source}...`);
    await createContainer(session, source, 'create');
    const view = await inspect(session, source);
    if (view.running) await step(`Failed to stop container ${source}`, () => pct.stop(source));
    await dumpInto(source, target, file);
    made.push(file);
    success(`Template '${file}' created.`);
  }
  return made;
}

function lxcTemplates(session: LxcSession): Record<string, { source_ctid: string | number }> {
  const raw = (session.config.lxc as unknown as { lxc_templates?: unknown }).lxc_templates;
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PhoenixError(`${session.config.paths.lxc}: lxc_templates must be an object of <file name>: {source_ctid}`);
  const out: Record<string, { source_ctid: string | number }> = {};
  for (const [file, spec] of Object.entries(raw as Record<string, unknown>)) {
    const id = (spec as { source_ctid?: unknown } | null)?.source_ctid;
    if ((typeof id !== 'string' && typeof id !== 'number') || !/^\d+$/.test(String(id))) {
      throw new PhoenixError(`${session.config.paths.lxc} at /lxc_templates/${file}: expected {"source_ctid": "<id>"}`);
    }
    out[file] = { source_ctid: id };
  }
  return out;
}

async function dumpInto(source: string, target: string, file: string): Promise<void> {
  const compress = file.endsWith('.tar.zst') ? 'zstd' : file.endsWith('.tar.lzo') ? 'lzo' : 'gzip';
  const dumpDir = path.join(path.dirname(target), `.phoenix-dump-${source}`);
  if (!isDryRun()) fs.mkdirSync(dumpDir, { recursive: true, mode: 0o700 });
  try {
    await step(`Failed to create template ${file}`, () => run({ cmd: 'vzdump', args: [source, '--mode', 'stop', '--compress', compress, '--dumpdir', dumpDir], timeoutMs: 0 }));
    if (isDryRun()) {
      info(`DRY-RUN: would move the dump to ${target}`);
      return;
    }
    const dump = fs.readdirSync(dumpDir).find((f) => f.startsWith(`vzdump-lxc-${source}-`) && !f.endsWith('.log'));
    if (!dump) throw new PhoenixError(`vzdump left no archive in ${dumpDir}`);
    fs.renameSync(path.join(dumpDir, dump), target);
  } finally {
    if (!isDryRun()) fs.rmSync(dumpDir, { recursive: true, force: true });
  }
}
