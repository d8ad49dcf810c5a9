// Making a container that does not exist yet: a clone of its source
// (finished first when the source is missing or unfinished), or a create from
// an OS template (downloaded when the storage lacks it).

import fs from 'node:fs';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { type GuestView, type LxcSession, inspect, lockOptions, step } from './session.mts';
import { type LxcConfig } from '../config/types.mts';
import { PhoenixError } from '../core/errors.mts';
import { assumedConfigAfterClone, assumedConfigAfterCreate, createOptions } from './plan.mts';
import { guestLockPath, withLock } from '../guest/locks.mts';
import { info } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { onHost } from '../guest/hostdirs.mts';
import { pveamDownload, pveamList, pvesmStatus } from '../pve/storage.mts';
import { releaseCloneSource } from '../pve/half-made.mts';

// ---------------------------------------------------------------- define

/**
 * Creates a missing clone source (the whole create sequence for it). Passed
 * in by create.mts, whose sequence calls define: the two steps call each
 * other, the modules do not.
 */
export type CreateSource = (source: string, lockWaitSeconds: number) => Promise<unknown>;

export async function define(session: LxcSession, ctid: string, ct: LxcConfig, changes: string[], createSource: CreateSource): Promise<GuestView> {
  info(`Container ${ctid} does not exist. Proceeding with creation...`);
  if (ct.clone_from_ctid) return cloneFromSource(session, ctid, ct, ct.clone_from_ctid, changes, createSource);
  return createFromOsTemplate(session, ctid, ct, ct.template as string, changes);
}

async function cloneFromSource(session: LxcSession, ctid: string, ct: LxcConfig, source: string, changes: string[], createSource: CreateSource): Promise<GuestView> {
  const sourceCt = session.config.lxc.lxc_configs[source];
  let sourceView = await inspect(session, source);
  // A source that is missing, or a template-to-be that a failed run left
  // unfinished, is brought to its full manifest state first, so the clone
  // never copies a half-built container.
  if (!sourceView.exists || (sourceCt?.is_template === true && !sourceView.template)) {
    if (!sourceCt) throw new PhoenixError(`Source container ${source} of CTID ${ctid} does not exist and is not in ${session.config.paths.lxc}.`);
    info(`Clone source ${source} is ${sourceView.exists ? 'not finished' : 'missing'}; creating it first.`);
    // A sibling may be creating the same source right now: wait for it.
    await createSource(source, session.siblings ? 3600 : session.options.lockWaitSeconds);
    sourceView = await inspect(session, source);
  }
  // Proxmox locks the source for the whole clone; siblings cloning the same
  // template wait their turn instead of failing with "CT is locked (disk)".
  const sourceLock = session.siblings ? lockOptions(session, 3600) : { ...lockOptions(session), enabled: false };
  await withLock(guestLockPath(session.options.lockFile, source), sourceLock, async () => {
    // A clone killed in the middle leaves its source marked; no clone of it runs now (its lock is ours).
    if (!sourceView.virtual && sourceView.config?.values.lock === 'disk') {
      const now = session.siblings ? (await pct.config(source)).values.lock : 'disk';
      if (now === 'disk') await step(`Failed to unlock CT ${source}`, () => releaseCloneSource(source));
    }
    return step(`'pct clone' failed for CTID ${ctid}`, () => pct.clone(source, ctid, { hostname: ct.name }));
  });
  changes.push(`cloned from ${source}`);
  if (isDryRun()) {
    const assumed: GuestView = { exists: true, config: assumedConfigAfterClone(sourceView.config ?? { entries: [], values: {} }, ct.name), running: false, template: false, virtual: true };
    session.assumed.set(ctid, assumed);
    return assumed;
  }
  return { exists: true, config: await pct.config(ctid), running: false, template: false, virtual: false };
}

async function createFromOsTemplate(session: LxcSession, ctid: string, ct: LxcConfig, template: string, changes: string[]): Promise<GuestView> {
  const storages = await pvesmStatus();
  if (!storages.some((s) => s.name === ct.storage_pool)) throw new PhoenixError(`Storage pool '${ct.storage_pool}' does not exist (pvesm status).`);
  const ostemplate = await ensureOsTemplate(session, template, changes);
  const options = createOptions(ct);
  await step(`'pct create' failed for CTID ${ctid}`, () => pct.create(ctid, ostemplate, options, { timeoutMs: 30 * 60_000 }));
  changes.push(`created from ${ostemplate}`);
  if (isDryRun()) {
    const assumed: GuestView = { exists: true, config: assumedConfigAfterCreate(ctid, options), running: false, template: false, virtual: true };
    session.assumed.set(ctid, assumed);
    return assumed;
  }
  return { exists: true, config: await pct.config(ctid), running: false, template: false, virtual: false };
}

/**
 * The OS template `pct create` is given is the one that was checked (and
 * downloaded when missing), whichever form the manifest uses:
 * a volume id (`storage:vztmpl/file`) is looked up in its storage; an
 * absolute path is used when it exists, else its file is downloaded to the
 * hypervisor's ISO storage and used from there.
 */
async function ensureOsTemplate(session: LxcSession, template: string, changes: string[]): Promise<string> {
  const volid = /^([A-Za-z][A-Za-z0-9_.-]*):vztmpl\/(.+)$/.exec(template);
  if (volid) {
    const [, storage, file] = volid as unknown as [string, string, string];
    if ((await pveamList(storage)).includes(template)) return template;
    info(`OS template ${template} is not in storage ${storage}; downloading it.`);
    await step(`Failed to download ${file}`, () => pveamDownload(storage, file));
    changes.push(`downloaded ${file} to ${storage}`);
    return template;
  }
  if (fs.existsSync(onHost(session.options.hostRoot, template))) return template;
  const storage = session.config.hypervisor.proxmox_storage_ids?.fastData_shared_iso;
  if (!storage) throw new PhoenixError(`OS template ${template} does not exist and no ISO storage (proxmox_storage_ids.fastData_shared_iso) is configured to download it to.`);
  const file = path.basename(template);
  const target = `${storage}:vztmpl/${file}`;
  if (!(await pveamList(storage)).includes(target)) {
    info(`OS template ${template} not found; downloading ${file} to ${storage}.`);
    await step(`Failed to download ${file}`, () => pveamDownload(storage, file));
    changes.push(`downloaded ${file} to ${storage}`);
  }
  return target;
}
