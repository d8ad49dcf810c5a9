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
import { applyPlan, type FeaturePlan } from '../../guest/feature-plan.mts';
import { guestFileStep, once, serviceProbe } from '../../guest/feature-container.mts';
import { guestFile, readGuestFile, requireRunning, runGuestCommand, type FeatureContext, type FeatureResult } from '../../guest/container.mts';
import { smallstepStep } from './step-cli.mts';
import { rootCaFile, rootCaOnHostMatches, STEP_CA_ROOT_CERT, STEP_CA_STEPPATH, stepCaCtid, syncRootCaFromCa } from '../../guest/root-ca.mts';

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

/**
 * Packages, wrapper and unit, systemd told about a unit it runs an older
 * copy of (a run stopped before its daemon-reload), enabled; once the CA is
 * initialised, started (or restarted for a new wrapper or unit) and its root
 * certificate copied to the host.
 */
export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  const wrapper = guestFileStep(ctid, { id: 'wrapper', feature: FEATURE, path: WRAPPER_PATH, content: wrapperScript, perms: '0755', label: 'installing the step-ca wrapper' });
  const unit = guestFileStep(ctid, { id: 'unit', feature: FEATURE, path: UNIT_PATH, content: unitFile, perms: '0644', label: 'installing step-ca.service' });
  const service = serviceProbe(ctid, SERVICE);
  const initialised = once(async () => {
    const ready = await pct.test(ctid, '-f', CA_CONFIG);
    if (!ready) info(`${FEATURE}: the CA in CT ${ctid} is not initialised yet (${CA_CONFIG}); its application script initialises it, and step-ca starts then`);
    return ready;
  });
  const caInContainer = once(() => readGuestFile(ctid, STEP_CA_ROOT_CERT));
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      smallstepStep(ctid, ['step-cli', 'step-ca'], FEATURE),
      wrapper,
      unit,
      {
        kind: 'host',
        id: 'daemon-reload',
        title: 'reload systemd',
        check: async () => !(await service()).needsReload,
        after: ['unit'],
        apply: async () => {
          await runGuestCommand(ctid, ['systemctl', 'daemon-reload'], { feature: FEATURE, label: 'reloading systemd' });
          return (await unit.inPlace()) ? ['reloaded systemd: step-ca.service had changed since it was loaded (an interrupted run)'] : [];
        },
      },
      {
        kind: 'host',
        id: 'enable',
        title: 'enable step-ca',
        check: async () => (await service()).enabled,
        apply: async () => {
          await runGuestCommand(ctid, ['systemctl', 'enable', SERVICE], { feature: FEATURE, label: 'enabling step-ca' });
          return ['enabled step-ca'];
        },
      },
      {
        kind: 'host',
        id: 'start',
        title: 'start step-ca',
        // Before the CA exists the unit's condition keeps it stopped: nothing to start yet.
        check: async () => !(await initialised()) || (await service()).active,
        apply: async () => {
          await runGuestCommand(ctid, ['systemctl', 'start', SERVICE], { feature: FEATURE, label: 'starting step-ca' });
          return ['started step-ca'];
        },
      },
      {
        kind: 'host',
        id: 'restart',
        title: 'restart step-ca for its new wrapper or unit',
        after: ['wrapper', 'unit', 'daemon-reload'],
        onlyIf: async () => (await initialised()) && (await service()).active,
        apply: async () => {
          await runGuestCommand(ctid, ['systemctl', 'restart', SERVICE], { feature: FEATURE, label: 'restarting step-ca' });
          return ['restarted step-ca for its new wrapper or unit'];
        },
      },
      {
        kind: 'host',
        id: 'root-ca-to-host',
        title: `copy the root CA to the host (${rootCaFile(context)})`,
        check: async () => {
          if (!(await initialised())) return true;
          if (ctid !== stepCaCtid(context)) {
            warn(`${FEATURE}: CT ${ctid} is not the configured CA container (step_ca.ctid ${stepCaCtid(context)}); the host's root CA copy is left alone`);
            return true;
          }
          const inCa = await caInContainer();
          return inCa === undefined || rootCaOnHostMatches(context, inCa);
        },
        apply: async () => {
          const synced = await syncRootCaFromCa(context, ctid, await caInContainer());
          return synced === 'created' || synced === 'changed' ? [`copied the root CA to the host (${rootCaFile(context)})`] : [];
        },
      },
    ],
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}
