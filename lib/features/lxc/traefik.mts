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
import { applyPlan, once, type FeaturePlan } from '../../guest/feature-plan.mts';
import { guestFileStep, serviceProbe } from '../../guest/feature-container.mts';
import { guestFile, missingCommands, probe, pushHostFile, readGuestFile, requireRunning, runGuestCommand, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';
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

export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  const root = await ensureRootCaOnHost(context);
  const ca = caUrl(context, ctid);
  const wantedStatic = await staticConfig(context, ctid, ca);

  const installed = once(async () => {
    const out = await probe(ctid, [BINARY, 'version']);
    return out.code === 0 ? /^\s*Version:\s*(\S+)/m.exec(out.stdout)?.[1] : undefined;
  });
  const missingDirs = once(async () => {
    const missing: string[] = [];
    for (const dir of [DYNAMIC_DIR, LOG_DIR]) if (!(await pct.test(ctid, '-d', dir))) missing.push(dir);
    return missing;
  });
  const caCurrent = once(() => readGuestFile(ctid, CA_PEM));
  const staticFile = guestFileStep(ctid, { id: 'static-config', feature: FEATURE, path: STATIC_CONFIG, content: () => wantedStatic.text, perms: '0644', label: `writing ${STATIC_CONFIG}` });
  const unit = guestFileStep(ctid, { id: 'unit', feature: FEATURE, path: UNIT_PATH, content: unitFile, perms: '0644', label: 'writing traefik.service' });
  const bootstrapped = once(async () => isBootstrapped(await readGuestFile(ctid, STEP_DEFAULTS), ca, root.fingerprint));
  const service = serviceProbe(ctid, 'traefik');
  const reload = () => runGuestCommand(ctid, ['systemctl', 'daemon-reload'], { feature: FEATURE, label: 'reloading systemd' });

  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'require',
        id: 'step-cli',
        title: 'the step CLI is installed (for the bootstrap)',
        check: async () => (await bootstrapped()) || (await missingCommands(ctid, ['step'])).length === 0,
        message: `the step CLI is missing in CT ${ctid}`,
        hint: 'list step_cli before traefik in the CT features',
      },
      {
        kind: 'host',
        id: 'binary',
        title: `install Traefik ${TRAEFIK_VERSION}`,
        check: async () => {
          const version = await installed();
          return version !== undefined && sameVersion(version, TRAEFIK_VERSION);
        },
        apply: async () => {
          const before = await installed();
          await runGuestScript(ctid, 'traefik_install.sh', [TRAEFIK_VERSION], { feature: FEATURE, label: `installing Traefik ${TRAEFIK_VERSION}`, timeoutMs: INSTALL_TIMEOUT_MS });
          return [before === undefined ? `installed Traefik ${TRAEFIK_VERSION}` : `replaced Traefik ${before} with ${TRAEFIK_VERSION}`];
        },
      },
      {
        kind: 'host',
        id: 'directories',
        title: `create ${CONFIG_DIR}, ${DYNAMIC_DIR} and ${LOG_DIR}`,
        check: async () => (await missingDirs()).length === 0,
        apply: async () => {
          await runGuestCommand(ctid, ['mkdir', '-p', '-m', '0755', CONFIG_DIR, DYNAMIC_DIR, LOG_DIR], { feature: FEATURE, label: 'creating the Traefik directories' });
          return [`created ${(await missingDirs()).join(' ')}`];
        },
      },
      {
        kind: 'host',
        id: 'root-ca',
        title: `install the root CA as ${CA_PEM}`,
        check: async () => (await caCurrent()) === root.pem,
        apply: async () => {
          const before = await caCurrent();
          await pushHostFile(ctid, root.file, CA_PEM, { feature: FEATURE, label: 'copying the root CA', perms: '0644', mkdir: true });
          return [`${before === undefined ? 'wrote' : 'updated'} ${CA_PEM} (sha256 ${root.fingerprint})`];
        },
      },
      {
        ...staticFile,
        apply: async () => (await staticFile.apply()).map((line) => `${line} from ${wantedStatic.source}`),
      },
      {
        ...unit,
        apply: async () => {
          const lines = await unit.apply();
          await reload();
          return lines;
        },
      },
      {
        kind: 'host',
        id: 'daemon-reload',
        title: 'reload systemd (traefik.service changed since it was loaded)',
        check: async () => !(await service()).needsReload,
        // A new unit file is followed by its own reload.
        onlyIf: () => unit.inPlace(),
        apply: async () => {
          await reload();
          return ['reloaded systemd: traefik.service had changed since it was loaded (an interrupted run)'];
        },
      },
      {
        kind: 'host',
        id: 'enable',
        title: 'enable traefik',
        check: async () => (await service()).enabled,
        apply: async () => {
          await runGuestCommand(ctid, ['systemctl', 'enable', 'traefik'], { feature: FEATURE, label: 'enabling traefik' });
          return ['enabled traefik'];
        },
      },
      {
        kind: 'host',
        id: 'bootstrap',
        title: `bootstrap step against ${ca}`,
        check: bootstrapped,
        apply: async () => {
          await runGuestCommand(ctid, ['step', 'ca', 'bootstrap', '--ca-url', ca, '--fingerprint', root.fingerprint, '--force'], {
            feature: FEATURE,
            label: `bootstrapping step against ${ca}`,
          });
          return [`bootstrapped step against ${ca}`];
        },
      },
      {
        kind: 'host',
        id: 'restart',
        // Enabled, not started: the application script starts it. A running Traefik takes its new binary or files.
        title: 'restart traefik',
        after: ['binary', 'root-ca', 'static-config', 'unit', 'daemon-reload'],
        onlyIf: async () => (await service()).active,
        apply: async () => {
          await runGuestCommand(ctid, ['systemctl', 'restart', 'traefik'], { feature: FEATURE, label: 'restarting traefik' });
          return ['restarted traefik'];
        },
      },
    ],
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
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
