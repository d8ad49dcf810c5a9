// The Step-CA container's names and places (STEPPATH files, the ready
// marker, the ACME provisioner), the `step` argument vectors, and the state
// one run of the CA's application script carries from step to step.

import type { PhoenixOptions } from '../core/env.mts';
import { type FeatureContext } from '../guest/container.mts';
import { STEP_CA_PORT, STEP_CA_STEPPATH } from '../guest/root-ca.mts';
import { CA_PASSWORD_FILE } from '../features/lxc/step-ca.mts';
import type { StepCaSettings } from './settings.mts';

/** The ACME provisioner's name: Traefik's resolver reaches it at /acme/acme/directory. */
export const ACME_PROVISIONER = 'acme';
export const ACME_CHALLENGES = ['http-01', 'tls-alpn-01'] as const;

/**
 * The ca.json entry `step ca provisioner add acme --type ACME --challenge …`
 * (ca-service.mts) leaves in authority.provisioners: no claims of its own, so
 * the CA's defaults apply (24 h certificates). The real-step-ca tests write it
 * into the ca.json they start step-ca on.
 */
export function acmeProvisionerJson(): { type: 'ACME'; name: string; challenges: string[] } {
  return { type: 'ACME', name: ACME_PROVISIONER, challenges: [...ACME_CHALLENGES] };
}
/** The CA password inside the CA container, where step-ca.service reads it. */
export const CA_PASSWORD_PATH = `${STEP_CA_STEPPATH}/${CA_PASSWORD_FILE}`;
/**
 * Exists only while the CA last passed its health check: written after a
 * passing check, removed when one fails. Holds the CA URL and the root
 * fingerprint (nothing secret).
 */
export const READY_MARKER = `${STEP_CA_STEPPATH}/ca.ready`;
/** The intermediate certificate `step ca init` leaves under STEPPATH (the bash's bundle starts with it). */
export const STEP_CA_INTERMEDIATE_CERT = `${STEP_CA_STEPPATH}/certs/intermediate_ca.crt`;
/** The provisioner password's short stay in the container: this prefix plus a random suffix, in root's home. */
export const PROVISIONER_TEMP_PREFIX = '.phoenix-provisioner-password.';
/**
 * What `step ca init` creates under STEPPATH. While config/ca.json is absent
 * these are the remains of an init that never finished (a run killed in the
 * middle): no certificate was ever issued from them, so they are removed
 * before the next init instead of blocking it.
 */
export const INIT_OUTPUTS = ['certs', 'secrets', 'config', 'db', 'templates'] as const;
/** The longest wait for a healthy CA, in seconds; PHOENIX_GUEST_TIMEOUT can only shorten it. */
export const HEALTH_WAIT_CAP_SECONDS = 120;
/** One `step` call inside the container (init generates keys; the rest are quick). */
export const STEP_INIT_TIMEOUT_MS = 5 * 60_000;
export const STEP_CALL_TIMEOUT_MS = 60_000;
export const SYSTEMCTL_TIMEOUT_MS = 120_000;

/** `step …` inside the CA container, with STEPPATH explicit (pct exec does not promise a HOME). */
export function stepArgv(...args: string[]): string[] {
  return ['env', `STEPPATH=${STEP_CA_STEPPATH}`, 'step', ...args];
}

/** The `step ca init` argument vector: everything from the settings, the passwords as file paths. */
export function initArgv(settings: StepCaSettings, provisionerPasswordPath: string): string[] {
  return stepArgv(
    'ca',
    'init',
    '--name',
    settings.name,
    ...settings.dnsNames.flatMap((name) => ['--dns', name]),
    '--address',
    `:${STEP_CA_PORT}`,
    '--provisioner',
    settings.provisioner,
    '--deployment-type',
    'standalone',
    '--password-file',
    CA_PASSWORD_PATH,
    '--provisioner-password-file',
    provisionerPasswordPath,
    '--with-ca-url',
    settings.caUrl,
  );
}

/** What one run of the application script carries from step to step. */
export interface Run {
  ctid: string;
  settings: StepCaSettings;
  options: PhoenixOptions;
  context: FeatureContext;
  changes: string[];
}

export function step(label: string): { feature: string; label: string } {
  return { feature: 'step-ca', label };
}

