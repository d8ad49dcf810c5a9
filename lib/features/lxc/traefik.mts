// traefik: the Traefik binary, its directories, static configuration and
// systemd unit in the mesh container (CT 102), plus what it needs to trust
// the internal CA: the root certificate as /etc/traefik/certs/ca.pem and
// `step` bootstrapped against the CA with the fingerprint the host computed.
// The service is enabled, not started (the application script starts it);
// a running Traefik is restarted when its binary or configuration changed.
//
// The bash also issued Traefik a certificate from inside the container with
// the CA's provisioner password, read from CT 103's bind-mounted secrets:
// here no CA secret reaches this container. Traefik's certificates
// come from the certificate manager (and, where enabled, from Step-CA's ACME
// directory through the resolver in the static configuration).

import * as pct from '../../pve/pct.mts';
import { PhoenixError } from '../../core/errors.mts';
import {
  changeLog,
  guestFile,
  missingCommands,
  probe,
  pushContent,
  pushHostFile,
  readGuestFile,
  requireRunning,
  runGuestCommand,
  runGuestScript,
  serviceState,
  type FeatureContext,
  type FeatureResult,
} from '../../guest/container.mts';
import { caUrl, ensureRootCaOnHost } from '../../guest/root-ca.mts';

export const FEATURE = 'traefik';

export { TRAEFIK_VERSION, BINARY, CONFIG_DIR, DYNAMIC_DIR, LOG_DIR, CERTS_DIR, CA_PEM, STATIC_CONFIG, UNIT_PATH, STEP_DEFAULTS, TEMPLATE_RELATIVE, ACME_PROVISIONER, SWARM_DOCKER_PORT, SWARM_NETWORK, DEFAULT_MESH_PORT, DEFAULT_API_PORT } from './traefik-names.mts';
import { TRAEFIK_VERSION, BINARY, CONFIG_DIR, DYNAMIC_DIR, LOG_DIR, CA_PEM, STATIC_CONFIG, UNIT_PATH, STEP_DEFAULTS } from './traefik-names.mts';
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/**
 * The file for /etc/traefik/traefik.yml: the operator's template
 * (<base>/etc/traefik/traefik.yml.template, else the one Phoenix ships) with
 * its placeholders filled from the manifests, the step-ca resolver added when
 * it lacks one and unsafe settings overridden (traefik-static.mts):
 * the same file the CT 102 application script and `sync all` install.
 * Imported lazily: the gateway modules read this feature's constants.
 */
export async function staticConfig(context: FeatureContext, ctid: string, ca: string): Promise<{ text: string; source: string }> {
  const { renderTraefikStatic } = await import('./traefik-static.mts');
  const { text, source } = await renderTraefikStatic(context, ctid, ca);
  return { text, source };
}

export function unitFile(): string {
  return guestFile('traefik.service');
}

/** "v3.6.2" and "3.6.2" are the same release. */
function sameVersion(a: string, b: string): boolean {
  return a.replace(/^v/, '') === b.replace(/^v/, '');
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  const root = await ensureRootCaOnHost(context);
  const ca = caUrl(context, ctid);

  const versionOut = await probe(ctid, [BINARY, 'version']);
  const installed = versionOut.code === 0 ? /^\s*Version:\s*(\S+)/m.exec(versionOut.stdout)?.[1] : undefined;
  const missingDirs: string[] = [];
  for (const dir of [DYNAMIC_DIR, LOG_DIR]) if (!(await pct.test(ctid, '-d', dir))) missingDirs.push(dir);
  const caCurrent = await readGuestFile(ctid, CA_PEM);
  const wantedStatic = await staticConfig(context, ctid, ca);
  const staticCurrent = await readGuestFile(ctid, STATIC_CONFIG);
  const unit = unitFile();
  const unitCurrent = await readGuestFile(ctid, UNIT_PATH);
  const bootstrapped = isBootstrapped(await readGuestFile(ctid, STEP_DEFAULTS), ca, root.fingerprint);
  const state = await serviceState(ctid, 'traefik');
  let restart = false;

  if (installed === undefined || !sameVersion(installed, TRAEFIK_VERSION)) {
    await runGuestScript(ctid, 'traefik_install.sh', [TRAEFIK_VERSION], { feature: FEATURE, label: `installing Traefik ${TRAEFIK_VERSION}`, timeoutMs: INSTALL_TIMEOUT_MS });
    changes.add(installed === undefined ? `installed Traefik ${TRAEFIK_VERSION}` : `replaced Traefik ${installed} with ${TRAEFIK_VERSION}`);
    restart = true;
  }
  if (missingDirs.length > 0) {
    await runGuestCommand(ctid, ['mkdir', '-p', '-m', '0755', CONFIG_DIR, DYNAMIC_DIR, LOG_DIR], { feature: FEATURE, label: 'creating the Traefik directories' });
    changes.add(`created ${missingDirs.join(' ')}`);
  }
  if (caCurrent !== root.pem) {
    await pushHostFile(ctid, root.file, CA_PEM, { feature: FEATURE, label: 'copying the root CA', perms: '0644', mkdir: true });
    changes.add(`${caCurrent === undefined ? 'wrote' : 'updated'} ${CA_PEM} (sha256 ${root.fingerprint})`);
    restart = true;
  }
  if (staticCurrent !== wantedStatic.text) {
    await pushContent(ctid, STATIC_CONFIG, wantedStatic.text, { feature: FEATURE, label: `writing ${STATIC_CONFIG}`, perms: '0644' });
    changes.add(`${staticCurrent === undefined ? 'wrote' : 'updated'} ${STATIC_CONFIG} from ${wantedStatic.source}`);
    restart = true;
  }
  if (unitCurrent !== unit) {
    await pushContent(ctid, UNIT_PATH, unit, { feature: FEATURE, label: 'writing traefik.service', perms: '0644' });
    await runGuestCommand(ctid, ['systemctl', 'daemon-reload'], { feature: FEATURE, label: 'reloading systemd' });
    changes.add(`${unitCurrent === undefined ? 'wrote' : 'updated'} ${UNIT_PATH}`);
    restart = true;
  } else if (state.needsReload) {
    await runGuestCommand(ctid, ['systemctl', 'daemon-reload'], { feature: FEATURE, label: 'reloading systemd' });
    changes.add('reloaded systemd: traefik.service had changed since it was loaded (an interrupted run)');
    restart = true;
  }
  if (!state.enabled) {
    await runGuestCommand(ctid, ['systemctl', 'enable', 'traefik'], { feature: FEATURE, label: 'enabling traefik' });
    changes.add('enabled traefik');
  }
  if (!bootstrapped) {
    if ((await missingCommands(ctid, ['step'])).length > 0) {
      throw new PhoenixError(`${FEATURE}: the step CLI is missing in CT ${ctid}`, { hint: 'list step_cli before traefik in the CT features' });
    }
    await runGuestCommand(ctid, ['step', 'ca', 'bootstrap', '--ca-url', ca, '--fingerprint', root.fingerprint, '--force'], {
      feature: FEATURE,
      label: `bootstrapping step against ${ca}`,
    });
    changes.add(`bootstrapped step against ${ca}`);
  }
  if (restart && state.active) {
    await runGuestCommand(ctid, ['systemctl', 'restart', 'traefik'], { feature: FEATURE, label: 'restarting traefik' });
    changes.add('restarted traefik');
  }
  return changes.result();
}

/** Whether step's defaults.json in the container names this CA URL and root fingerprint. */
export function isBootstrapped(defaults: string | undefined, ca: string, fingerprint: string): boolean {
  if (defaults === undefined) return false;
  try {
    const parsed = JSON.parse(defaults) as Record<string, unknown>;
    return parsed['ca-url'] === ca && typeof parsed.fingerprint === 'string' && parsed.fingerprint.toLowerCase() === fingerprint;
  } catch {
    return false;
  }
}
