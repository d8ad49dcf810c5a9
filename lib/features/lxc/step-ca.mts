// step_ca: the Step-CA server in its own container (CT 103). The feature
// installs step-cli and step-ca, the start wrapper and the systemd unit, and
// enables the service. It does not initialise the CA: the 103 application
// script does, after the features. The unit only starts once ca.json exists,
// so the service no longer crash-loops until then, and this feature is the
// one owner of wrapper and unit (the bash app script overwrote both).
// Once the CA exists, the host's copy of the root certificate is refreshed
// from it; nothing else of the CA ever leaves the container.

import * as pct from '../../pve/pct.mts';
import { info, warn } from '../../core/log.mts';
import { changeLog, ensureGuestFile, guestFile, requireRunning, runGuestCommand, serviceState, type FeatureContext, type FeatureResult } from '../../guest/container.mts';
import { ensureSmallstepPackages } from './step-cli.mts';
import { rootCaFile, STEP_CA_STEPPATH, stepCaCtid, syncRootCaFromCa } from '../../guest/root-ca.mts';

export const FEATURE = 'step_ca';

export const WRAPPER_PATH = '/usr/local/bin/run-step-ca.sh';
export const UNIT_PATH = '/etc/systemd/system/step-ca.service';
export const SERVICE = 'step-ca';
/** The CA password file, relative to STEPPATH, as the bash's 103 script created it. */
export const CA_PASSWORD_FILE = 'ca_password.txt';
export const CA_CONFIG = `${STEP_CA_STEPPATH}/config/ca.json`;

export function wrapperScript(): string {
  return guestFile('run-step-ca.sh', { STEPPATH: STEP_CA_STEPPATH, CA_PASSWORD_FILE });
}

export function unitFile(): string {
  return guestFile('step-ca.service', { STEPPATH: STEP_CA_STEPPATH });
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  await ensureSmallstepPackages(ctid, ['step-cli', 'step-ca'], FEATURE, changes);

  const wrapperChanged = await ensureGuestFile(ctid, WRAPPER_PATH, wrapperScript(), { feature: FEATURE, label: 'installing the step-ca wrapper', perms: '0755' }, changes);
  const unitChanged = await ensureGuestFile(ctid, UNIT_PATH, unitFile(), { feature: FEATURE, label: 'installing step-ca.service', perms: '0644' }, changes);
  const state = await serviceState(ctid, SERVICE);
  if (unitChanged || state.needsReload) {
    await runGuestCommand(ctid, ['systemctl', 'daemon-reload'], { feature: FEATURE, label: 'reloading systemd' });
    if (!unitChanged) changes.add('reloaded systemd: step-ca.service had changed since it was loaded (an interrupted run)');
  }
  if (!state.enabled) {
    await runGuestCommand(ctid, ['systemctl', 'enable', SERVICE], { feature: FEATURE, label: 'enabling step-ca' });
    changes.add('enabled step-ca');
  }

  if (!(await pct.test(ctid, '-f', CA_CONFIG))) {
    info(`${FEATURE}: the CA in CT ${ctid} is not initialised yet (${CA_CONFIG}); its application script initialises it, and step-ca starts then`);
    return changes.result();
  }
  if (!state.active) {
    await runGuestCommand(ctid, ['systemctl', 'start', SERVICE], { feature: FEATURE, label: 'starting step-ca' });
    changes.add('started step-ca');
  } else if (wrapperChanged || unitChanged || state.needsReload) {
    await runGuestCommand(ctid, ['systemctl', 'restart', SERVICE], { feature: FEATURE, label: 'restarting step-ca' });
    changes.add('restarted step-ca for its new wrapper or unit');
  }

  if (ctid !== stepCaCtid(context)) {
    warn(`${FEATURE}: CT ${ctid} is not the configured CA container (step_ca.ctid ${stepCaCtid(context)}); the host's root CA copy is left alone`);
    return changes.result();
  }
  const synced = await syncRootCaFromCa(context, ctid);
  if (synced === 'created' || synced === 'changed') changes.add(`copied the root CA to the host (${rootCaFile(context)})`);
  return changes.result();
}
