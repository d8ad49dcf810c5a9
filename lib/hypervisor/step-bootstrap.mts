// The host's own `step` client, bootstrapped against Phoenix's CA: the CA
// URL from the hypervisor config (`step_ca.ca_url`, or the CA container's
// address; the bash hard-coded an address that had moved), the fingerprint
// computed from the host copy of the root CA. Bootstrapped means step's
// defaults.json already names that URL and that fingerprint (the bash
// compared the URL only, so a re-initialised CA was never picked up).
// The renewal manager calls bootstrapHostStep before issuing certificates.

import fs from 'node:fs';
import path from 'node:path';
import type { FeatureContext } from '../guest/container.mts';
import { caUrl, stepCaCtid } from '../guest/root-ca.mts';
import { CommandError, PhoenixError } from '../core/errors.mts';
import { info, success } from '../core/log.mts';
import { run } from '../core/runner.mts';
import { isDryRun } from '../core/context.mts';
import { hostRootCaFile, hostStepPath, readHostRootCa } from './host.mts';

export interface StepBootstrapResult {
  outcome: 'unchanged' | 'bootstrapped';
  caUrl: string;
  fingerprint: string;
  stepPath: string;
}

/** The CA URL the host bootstraps against. */
export function hostCaUrl(context: FeatureContext): string {
  return caUrl({ ...context, bootstrapCaUrl: '' }, stepCaCtid(context));
}

/** What step's defaults.json says now (undefined when it has no usable file). */
export function currentStepDefaults(stepPath: string): { caUrl?: string; fingerprint?: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(stepPath, 'config', 'defaults.json'), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const doc = JSON.parse(text) as Record<string, unknown>;
    return {
      ...(typeof doc['ca-url'] === 'string' ? { caUrl: doc['ca-url'] } : {}),
      ...(typeof doc.fingerprint === 'string' ? { fingerprint: doc.fingerprint.toLowerCase() } : {}),
    };
  } catch {
    return {};
  }
}

export async function bootstrapHostStep(context: FeatureContext): Promise<StepBootstrapResult> {
  const url = hostCaUrl(context);
  const root = await readHostRootCa(context);
  if (!root) {
    throw new PhoenixError(`no root CA copy at ${hostRootCaFile(context)}: cannot bootstrap step on the host`, {
      hint: `create the CA container first (lxc-manager.sh create ${stepCaCtid(context)}); it copies the root CA to step_ca.root_ca_file`,
    });
  }
  const stepPath = hostStepPath(context.options);
  const current = currentStepDefaults(stepPath);
  if (current?.caUrl === url && current.fingerprint === root.fingerprint) {
    info(`step on the host is already bootstrapped for ${url} (root sha256 ${root.fingerprint})`);
    return { outcome: 'unchanged', caUrl: url, fingerprint: root.fingerprint, stepPath };
  }
  info(`bootstrapping step on the host for ${url} (root sha256 ${root.fingerprint}; STEPPATH ${stepPath})`);
  try {
    await run({
      cmd: 'step',
      args: ['ca', 'bootstrap', '--ca-url', url, '--fingerprint', root.fingerprint, '--force'],
      env: { ...(process.env as Record<string, string>), STEPPATH: stepPath },
      timeoutMs: 120_000,
    });
  } catch (err) {
    if (err instanceof CommandError) {
      throw new PhoenixError(`step ca bootstrap against ${url} failed: ${err.stderr.trim() || err.message}`, {
        cause: err,
        hint: `the CA container must be running and reachable at ${url}, with the root whose fingerprint is ${root.fingerprint}`,
      });
    }
    throw err;
  }
  if (!isDryRun()) {
    const after = currentStepDefaults(stepPath);
    if (after?.caUrl !== url || after.fingerprint !== root.fingerprint) {
      throw new PhoenixError(`step ca bootstrap exited 0 but ${path.join(stepPath, 'config', 'defaults.json')} does not name ${url} with fingerprint ${root.fingerprint}`);
    }
  }
  success(`step on the host is bootstrapped for ${url}`);
  return { outcome: 'bootstrapped', caUrl: url, fingerprint: root.fingerprint, stepPath };
}
