// ollama: the Ollama model server as a systemd service. Installed means the
// `ollama` command is on PATH, the unit is Phoenix's, and the service is
// enabled and running. The bash rewrote the unit and restarted the service
// on every run, then queried the API at once, racing the restart.

import { applyPlan, type FeaturePlan } from '../../guest/feature-plan.mts';
import { guestFileStep, once, serviceProbe } from '../../guest/feature-container.mts';
import { guestFile, missingCommands, requireRunning, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'ollama';

/**
 * Ollama's own installer (upstream literal). It is unsigned and carries no
 * checksum; the manifests name no Ollama version to pin instead.
 */
export const INSTALLER_URL = 'https://ollama.com/install.sh';
export const UNIT_PATH = '/etc/systemd/system/ollama.service';
/** The API the bash checked after the restart (port 11434 is Ollama's default). */
export const API_URL = 'http://127.0.0.1:11434/api/tags';
/** How long the API may take to answer after a restart. */
export const API_WAIT_SECONDS = 60;
const INSTALL_TIMEOUT_MS = 30 * 60_000;

export function unitFile(): string {
  return guestFile('ollama.service');
}

export async function plan(ctid: string, _context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  const binaryMissing = once(async () => (await missingCommands(ctid, ['ollama'])).length > 0);
  const unit = guestFileStep(ctid, { id: 'unit', feature: FEATURE, path: UNIT_PATH, content: unitFile, perms: '0644', label: 'writing ollama.service' });
  const service = serviceProbe(ctid, 'ollama');
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'host',
        id: 'ollama',
        title: 'run the Ollama installer',
        check: async () => !(await binaryMissing()),
        apply: async () => {
          await runGuestScript(ctid, 'ollama_install.sh', [INSTALLER_URL], { feature: FEATURE, label: 'running the Ollama installer', timeoutMs: INSTALL_TIMEOUT_MS });
          return ['installed ollama'];
        },
      },
      // The installer writes a unit of its own, so ours goes in after it.
      { ...unit, after: ['ollama'] },
      {
        kind: 'host',
        id: 'service',
        title: 'start ollama and wait for its API',
        check: async () => {
          const state = await service();
          return state.active && state.enabled;
        },
        after: ['ollama', 'unit'],
        apply: async () => {
          await runGuestScript(ctid, 'ollama_service.sh', [API_URL, String(API_WAIT_SECONDS)], { feature: FEATURE, label: 'starting ollama and waiting for its API' });
          return ['(re)started ollama; its API answers'];
        },
      },
    ],
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}
