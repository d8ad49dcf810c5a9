// ollama: the Ollama model server as a systemd service. Installed means the
// `ollama` command is on PATH, the unit is Phoenix's, and the service is
// enabled and running. The bash rewrote the unit and restarted the service
// on every run, then queried the API at once, racing the restart.

import {
  changeLog,
  guestFile,
  missingCommands,
  pushContent,
  readGuestFile,
  requireRunning,
  runGuestScript,
  serviceState,
  type FeatureContext,
  type FeatureResult,
} from '../../guest/container.mts';

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

export async function install(ctid: string, _context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  const binaryMissing = (await missingCommands(ctid, ['ollama'])).length > 0;
  const unit = unitFile();
  const currentUnit = await readGuestFile(ctid, UNIT_PATH);
  const state = await serviceState(ctid, 'ollama');
  if (!binaryMissing && currentUnit === unit && state.active && state.enabled) return changes.result();

  if (binaryMissing) {
    await runGuestScript(ctid, 'ollama_install.sh', [INSTALLER_URL], { feature: FEATURE, label: 'running the Ollama installer', timeoutMs: INSTALL_TIMEOUT_MS });
    changes.add('installed ollama');
  }
  // The installer writes a unit of its own, so ours goes in after it.
  if (binaryMissing || currentUnit !== unit) {
    await pushContent(ctid, UNIT_PATH, unit, { feature: FEATURE, label: 'writing ollama.service', perms: '0644' });
    changes.add(`wrote ${UNIT_PATH}`);
  }
  await runGuestScript(ctid, 'ollama_service.sh', [API_URL, String(API_WAIT_SECONDS)], { feature: FEATURE, label: 'starting ollama and waiting for its API' });
  changes.add('(re)started ollama; its API answers');
  return changes.result();
}
