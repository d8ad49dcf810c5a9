// The Step-CA container (CT 103 in the example manifests), brought to a
// working CA from the host: its STEPPATH private, the CA name resolvable
// inside it, the CA initialised once with passwords made on the host, the
// step-ca service (installed by the step_ca feature) running and answering
// its health check, one ACME provisioner, the root certificate copied to the
// host, and a ready marker that exists only while the CA answered.
//
// Secrets: the CA password is generated here and exists only in the CA's
// STEPPATH (ca_password.txt, 0600), where step-ca.service reads it. The
// provisioner password lives on the host only (step_ca.provisioner_password_file,
// 0600); it enters the container once, as a 0600 file that `step ca init`
// reads and that is removed right after. Both travel by `pct push` from
// 0600 files in a private temporary directory, never in an argument, a log
// line or a world-readable file, and ca.json is never printed.
//
// Every name, address and path comes from the manifests (`step_ca.*` of the
// hypervisor config, the domain, the CA container's addresses and mounts,
// the addresses other guests reach the CA by); the bash hard-coded them all.
// Where the CA container still mounts the bash CA's shared directory, the
// public files the bash scripts read there are kept up to date
// (lib/pki/shared-dir.mts).


import fs from 'node:fs';
import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { info, warn } from '../core/log.mts';
import { probe, readGuestFile, requireRunning, type FeatureContext } from '../guest/container.mts';
import { parseRootCa, STEP_CA_ROOT_CERT, syncRootCaFromCa } from '../guest/root-ca.mts';
import { CA_CONFIG, SERVICE, UNIT_PATH } from '../features/lxc/step-ca.mts';
import { writeSharedFiles } from './shared-dir.mts';
import type { StepCaSettings } from './settings.mts';
import {
  ACME_PROVISIONER,
  READY_MARKER,
  STEP_CA_INTERMEDIATE_CERT,
  type Run,
} from './ca-layout.mts';
import {
  ensureStepPath,
  ensureHostsEntries,
  initialiseCa,
  removeStrayProvisionerPasswords,
  removeUnfinishedInit,
  checkExistingSecrets,
} from './ca-init.mts';
import {
  systemctl,
  requireHealthy,
  ensureAcmeProvisioner,
  writeReadyMarker,
} from './ca-service.mts';

export { caDnsNames, DEFAULT_CA_NAME, DEFAULT_PROVISIONER_NAME, DEFAULT_PROVISIONER_PASSWORD_FILE, stepCaSettings, type StepCaSettings } from './settings.mts';
export { ACME_PROVISIONER, ACME_CHALLENGES, CA_PASSWORD_PATH, READY_MARKER, STEP_CA_INTERMEDIATE_CERT, PROVISIONER_TEMP_PREFIX, INIT_OUTPUTS, HEALTH_WAIT_CAP_SECONDS, stepArgv, initArgv } from './ca-layout.mts';
export { hostsHasName, pendingCopyNote } from './ca-init.mts';
export { parseProvisionerList, readyMarkerText } from './ca-service.mts';

export interface StepCaResult {
  ctid: string;
  /** One line per change made (or planned, in a dry-run). */
  changes: string[];
  /** The root fingerprint, when the CA exists (not in a dry-run of a first initialisation). */
  fingerprint?: string;
}
/** Bring the CA container to a working, healthy CA; idempotent. */
export async function ensureStepCa(context: FeatureContext, settings: StepCaSettings): Promise<StepCaResult> {
  const run: Run = { ctid: settings.ctid, settings, options: context.options, context, changes: [] };
  const { ctid, changes } = run;
  for (const w of settings.warnings) warn(w);
  await requireRunning(ctid);
  if (!(await pct.test(ctid, '-f', UNIT_PATH))) {
    throw new PhoenixError(`${UNIT_PATH} is missing in CT ${ctid}`, { hint: `the step_ca feature installs step-ca and its unit; list "step_ca" in the features of CT ${ctid}` });
  }

  await removeStrayProvisionerPasswords(run);
  await ensureStepPath(run);
  await ensureHostsEntries(run);

  const initialised = await pct.test(ctid, '-f', CA_CONFIG);
  if (initialised) {
    info(`the CA in CT ${ctid} is already initialised (${CA_CONFIG})`);
    await checkExistingSecrets(run);
  } else {
    await removeUnfinishedInit(run);
    await initialiseCa(run);
  }

  // After `step ca init` the unit's start condition (ca.json) holds for the first time.
  let serviceChanged = false;
  if (!initialised) {
    await systemctl(run, ['restart', SERVICE], 'starting step-ca on its new CA');
    changes.push('started step-ca');
    serviceChanged = true;
  } else if ((await probe(ctid, ['systemctl', 'is-active', '--quiet', SERVICE])).code !== 0) {
    await systemctl(run, ['start', SERVICE], 'starting step-ca');
    changes.push('started step-ca');
    serviceChanged = true;
  }
  if ((await probe(ctid, ['systemctl', 'is-enabled', '--quiet', SERVICE])).code !== 0) {
    await systemctl(run, ['enable', SERVICE], 'enabling step-ca');
    changes.push('enabled step-ca');
  }

  if (isDryRun() && serviceChanged) {
    // Nothing was started, so there is nothing to ask yet; say what would follow.
    const shared = settings.sharedDir ? `, write the public CA files for the bash scripts into ${settings.sharedDir}` : '';
    info(`DRY-RUN: would wait for step-ca in CT ${ctid} to pass 'step ca health', add the ACME provisioner '${ACME_PROVISIONER}' if missing, copy the root CA to ${settings.rootCaFile}${shared} and write ${READY_MARKER}`);
    changes.push(`add the ACME provisioner '${ACME_PROVISIONER}' if missing`, `copy the root CA to ${settings.rootCaFile}`, ...(settings.sharedDir ? [`write the public CA files into ${settings.sharedDir}`] : []), `write ${READY_MARKER}`);
    return { ctid, changes };
  }

  await requireHealthy(run);
  if (await ensureAcmeProvisioner(run)) {
    // ca.json changed; step-ca reads it only when it starts.
    await systemctl(run, ['restart', SERVICE], 'restarting step-ca for its new provisioner');
    changes.push('restarted step-ca');
    if (isDryRun()) return { ctid, changes };
    await requireHealthy(run);
  }

  const synced = await syncRootCaFromCa(run.context, ctid);
  if (synced === 'created' || synced === 'changed') changes.push(`copied the root CA to ${settings.rootCaFile}`);
  const rootPem = isDryRun() || synced === 'absent' ? await readGuestFile(ctid, STEP_CA_ROOT_CERT) : fs.readFileSync(settings.rootCaFile, 'utf8');
  if (rootPem === undefined) throw new PhoenixError(`CT ${ctid} has a CA but no ${STEP_CA_ROOT_CERT}`);
  const { fingerprint } = await parseRootCa(rootPem, `${STEP_CA_ROOT_CERT} of CT ${ctid}`);
  if (settings.sharedDir) {
    const intermediate = await readGuestFile(ctid, STEP_CA_INTERMEDIATE_CERT);
    if (intermediate === undefined) throw new PhoenixError(`CT ${ctid} has a CA but no ${STEP_CA_INTERMEDIATE_CERT}`);
    changes.push(...writeSharedFiles(settings.sharedDir, rootPem, intermediate, fingerprint));
  }
  await writeReadyMarker(run, fingerprint);
  return { ctid, changes, fingerprint };
}
