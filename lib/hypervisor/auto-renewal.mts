// Automatic certificate renewal on the host: a systemd timer that runs the
// certificate renewal manager every hour. The bash wrote an hourly
// /etc/cron.d job instead (to a script committed without its exec bit, and
// only reachable from a setup step that never ran); a timer shows its last
// run and result in `systemctl list-timers` and the journal, catches up a
// run missed while the host was off (Persistent=), and runs the manager
// under the host lock, waiting for a running create or sync instead of
// interleaving with it.
//
// Idempotent: the unit files are written atomically only when their text
// changed, and systemd is only told (daemon-reload, enable --now) when
// something changed or the timer is not enabled and running.

import fs from 'node:fs';
import type { PhoenixOptions } from '../core/env.mts';
import type { PhoenixConfig } from '../config/load.mts';
import { configPathsEnv } from '../config/load.mts';
import { writeFileAtomic, removeFile } from '../core/fs.mts';
import { resolveScript } from '../core/bridge.mts';
import { run, type CommandResult } from '../core/runner.mts';
import { hostFile, systemctl, unitActiveState, unitEnabled, unitsNeedingReload } from './host.mts';

export const SERVICE_UNIT = 'phoenix-cert-renewal.service';
export const TIMER_UNIT = 'phoenix-cert-renewal.timer';
export const UNIT_DIR = '/etc/systemd/system';
/** What the bash installed; left in place it would run the manager a second time every hour. */
export const LEGACY_CRON_FILE = '/etc/cron.d/phoenix-cert-renewal';
/** The upstream name of the script the timer runs. */
export const RENEWAL_SCRIPT = 'managers/certificate-renewal-manager.sh';
/** How long the timer's run waits for another Phoenix run to release the host lock. */
export const LOCK_WAIT_SECONDS = 1800;

export interface AutoRenewalResult {
  changes: string[];
}

/** A word for an Exec= or Environment= line: quoted when needed, `%` doubled (systemd's specifier escape). */
export function systemdWord(word: string): string {
  const escaped = word.replace(/%/g, '%%');
  if (escaped !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The environment the timer's run needs to find the same manifests and lock as this one. */
export function renewalEnvironment(config: PhoenixConfig, options: PhoenixOptions): Array<[string, string]> {
  const env: Array<[string, string]> = [['PHOENIX_BASE_DIR', options.baseDir]];
  for (const [key, value] of Object.entries(configPathsEnv(config.paths))) env.push([key, value]);
  env.push(['PHOENIX_LOCK_FILE', options.lockFile], ['PHOENIX_LOCK_WAIT', String(LOCK_WAIT_SECONDS)], ['MAIN_LOG_FILE', options.logFile]);
  if (options.legacyDir !== undefined) env.push(['PHOENIX_LEGACY_DIR', options.legacyDir]);
  if (options.useLegacy.length > 0) env.push(['PHOENIX_USE_LEGACY', options.useLegacy.join(' ')]);
  if (options.hostRoot !== '/') env.push(['PHOENIX_HOST_ROOT', options.hostRoot]);
  return env;
}

export function serviceUnitText(command: readonly string[], environment: ReadonlyArray<readonly [string, string]>): string {
  return [
    '# Written by Phoenix (hypervisor_feature_setup_auto_renewal.sh); edits are overwritten.',
    '[Unit]',
    'Description=Phoenix certificate renewal (certificate-renewal-manager)',
    'Wants=network-online.target',
    'After=network-online.target pve-cluster.service',
    '',
    '[Service]',
    'Type=oneshot',
    ...environment.map(([key, value]) => `Environment=${systemdWord(`${key}=${value}`)}`),
    `ExecStart=${command.map(systemdWord).join(' ')}`,
    // A renewal waits for the host lock and then for the CA; it still must end.
    'TimeoutStartSec=1h',
    'Nice=10',
    '',
  ].join('\n');
}

export function timerUnitText(): string {
  return [
    '# Written by Phoenix (hypervisor_feature_setup_auto_renewal.sh); edits are overwritten.',
    '[Unit]',
    'Description=Renew the Phoenix certificates every hour',
    '',
    '[Timer]',
    'OnCalendar=hourly',
    'RandomizedDelaySec=5min',
    'Persistent=true',
    `Unit=${SERVICE_UNIT}`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}

export async function setupAutoRenewal(config: PhoenixConfig, options: PhoenixOptions): Promise<AutoRenewalResult> {
  const changes: string[] = [];
  const script = resolveScript(RENEWAL_SCRIPT, { legacyDir: options.legacyDir, useLegacy: options.useLegacy });
  const service = serviceUnitText([script.command, ...script.prefix], renewalEnvironment(config, options));
  let unitsChanged = false;
  for (const [unit, text] of [[SERVICE_UNIT, service], [TIMER_UNIT, timerUnitText()]] as const) {
    const outcome = writeFileAtomic(hostFile(options, `${UNIT_DIR}/${unit}`), text, { mode: 0o644 });
    if (outcome !== 'unchanged') {
      unitsChanged = true;
      changes.push(`${outcome === 'created' ? 'wrote' : 'updated'} ${UNIT_DIR}/${unit}`);
    }
  }

  const cron = hostFile(options, LEGACY_CRON_FILE);
  if (fs.existsSync(cron) && /certificate-renewal-manager/.test(fs.readFileSync(cron, 'utf8'))) {
    removeFile(cron);
    changes.push(`removed the hourly cron job ${LEGACY_CRON_FILE} (the timer replaces it)`);
  }

  const stale = unitsChanged ? [] : await unitsNeedingReload([SERVICE_UNIT, TIMER_UNIT]);
  if (stale.length > 0) changes.push(`reloaded systemd: ${stale.join(' and ')} had changed since systemd loaded them (an interrupted run)`);
  if (unitsChanged || stale.length > 0) await systemctl('daemon-reload');
  const enabled = await unitEnabled(TIMER_UNIT);
  const active = (await unitActiveState(TIMER_UNIT)) === 'active';
  if (unitsChanged || !enabled || !active) {
    await enableNow(TIMER_UNIT);
    if (!enabled || !active) changes.push(`enabled and started ${TIMER_UNIT}`);
  }
  return { changes };
}

function enableNow(unit: string): Promise<CommandResult> {
  return run({ cmd: 'systemctl', args: ['enable', '--now', unit] });
}
