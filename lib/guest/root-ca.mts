// The root CA certificate, the only piece of the PKI that leaves the Step-CA
// container (docs/pki-and-gateway.md). CA keys and passwords stay in that container's own
// directory; the host keeps a copy of the root certificate (pulled with
// `pct pull`), computes its fingerprint itself and pushes the certificate to
// the consumers. No consumer ever sees a CA key, a CA password or the
// provisioner password (the bash bind-mounted all of them, world-readable,
// into five containers).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { info } from '../core/log.mts';
import { guestConfig, readGuestFile, type FeatureContext } from './container.mts';
import { onHost } from './hostdirs.mts';

/** Host copy of the root CA when the hypervisor config has no `step_ca.root_ca_file`. */
export const DEFAULT_ROOT_CA_FILE = '/etc/phoenix/ca/root_ca.crt';
/** The CA container when the hypervisor config has no `step_ca.ctid` (the bash hard-coded 103). */
export const DEFAULT_STEP_CA_CTID = '103';
/**
 * STEPPATH of the CA inside its container: step's default for root, which is
 * where the example manifest mounts CT 103's persistent CA directory. The
 * 103 application script initialises the CA there.
 */
export const STEP_CA_STEPPATH = '/root/.step';
/** Where `step ca init` leaves the root certificate under STEPPATH. */
export const STEP_CA_ROOT_CERT = `${STEP_CA_STEPPATH}/certs/root_ca.crt`;
/** step-ca's listening port (the bash's `--address :9000`). */
export const STEP_CA_PORT = 9000;

export interface RootCa {
  /** Host path of the root certificate. */
  file: string;
  pem: string;
  /** SHA-256 of the DER certificate, lower-case hex without colons (what `step certificate fingerprint` prints). */
  fingerprint: string;
}

/** The host copy of the root CA, under PHOENIX_HOST_ROOT (the simulated host's own files). */
export function rootCaFile(context: FeatureContext): string {
  return onHost(context.options.hostRoot, context.config.hypervisor.step_ca?.root_ca_file ?? DEFAULT_ROOT_CA_FILE);
}

export function stepCaCtid(context: FeatureContext): string {
  return context.config.hypervisor.step_ca?.ctid ?? DEFAULT_STEP_CA_CTID;
}

/**
 * The CA URL a container bootstraps step against: the script's second
 * argument, else the CT's `bootstrap_ca_url`, else `step_ca.ca_url`, else
 * the CA container's own address. The bash fell back to
 * https://ca.internal.thinkheads.ai:9000, a name its DNS points at Traefik,
 * so step reached Traefik instead of the CA.
 */
export function caUrl(context: FeatureContext, ctid: string): string {
  const fromArgs = context.bootstrapCaUrl?.trim();
  if (fromArgs) return fromArgs;
  const fromGuest = guestConfig(context, ctid)?.bootstrap_ca_url;
  if (fromGuest) return fromGuest;
  const fromHypervisor = context.config.hypervisor.step_ca?.ca_url;
  if (fromHypervisor) return fromHypervisor;
  const caId = stepCaCtid(context);
  const address = guestConfig(context, caId)?.network_config.ip.split('/')[0];
  if (address && /^\d+\.\d+\.\d+\.\d+$/.test(address)) return `https://${address}:${STEP_CA_PORT}`;
  throw new PhoenixError(`no CA URL for CT ${ctid}`, {
    hint: `pass it as the second argument, or set bootstrap_ca_url on CT ${ctid} or step_ca.ca_url in the hypervisor config`,
  });
}

/** Parse a PEM root certificate and its fingerprint; refuse anything that is not a CA certificate. */
export async function parseRootCa(pem: string, source: string): Promise<{ fingerprint: string }> {
  // node:crypto costs ~10 ms to load; only the PKI features pay for it.
  const { X509Certificate } = await import('node:crypto');
  let cert;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new PhoenixError(`${source} is not a PEM certificate: ${(err as Error).message}`);
  }
  if (!cert.ca) throw new PhoenixError(`${source} is not a CA certificate (${cert.subject.replace(/\n/g, ', ')})`);
  return { fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase() };
}

async function readHostRootCa(file: string): Promise<RootCa | undefined> {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const { fingerprint } = await parseRootCa(pem, file);
  return { file, pem, fingerprint };
}

/**
 * The root CA for a consumer container. The host copy is used when it
 * exists; otherwise it is pulled from the CA container first (read with
 * `cat` instead in dry-run, so the plan still knows the fingerprint).
 */
export async function ensureRootCaOnHost(context: FeatureContext): Promise<RootCa> {
  const file = rootCaFile(context);
  const existing = await readHostRootCa(file);
  if (existing) return existing;
  const caId = stepCaCtid(context);
  info(`no root CA at ${file} yet; copying it from CT ${caId}`);
  const pem = await pullRootCa(caId, file);
  const { fingerprint } = await parseRootCa(pem, `${STEP_CA_ROOT_CERT} of CT ${caId}`);
  writeFileAtomic(file, pem, { mode: 0o644, dirMode: 0o755 });
  return { file, pem, fingerprint };
}

/** Whether the host copy of the root CA holds exactly `pem` (read-only). */
export function rootCaOnHostMatches(context: FeatureContext, pem: string): boolean {
  try {
    return fs.readFileSync(rootCaFile(context), 'utf8') === pem;
  } catch {
    return false;
  }
}

/**
 * Bring the host copy in line with the CA container (run by the step_ca
 * feature, and by whatever initialises the CA). Nothing is pulled while the
 * copy is current; 'absent' while the CA is not initialised. `inCa` is the
 * container's certificate when the caller has read it already.
 */
export async function syncRootCaFromCa(context: FeatureContext, caId = stepCaCtid(context), inCa?: string): Promise<WriteOutcome | 'absent'> {
  const current = inCa ?? (await readGuestFile(caId, STEP_CA_ROOT_CERT));
  if (current === undefined) return 'absent';
  const file = rootCaFile(context);
  if (rootCaOnHostMatches(context, current)) return 'unchanged';
  const pem = await pullRootCa(caId, file, current);
  await parseRootCa(pem, `${STEP_CA_ROOT_CERT} of CT ${caId}`);
  return writeFileAtomic(file, pem, { mode: 0o644, dirMode: 0o755 });
}

/**
 * `pct pull` into a private temp directory, then the caller writes the
 * target atomically. In dry-run the pull is only printed and the content
 * comes from a read-only `cat` (or `known`).
 */
async function pullRootCa(caId: string, target: string, known?: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-rootca-'));
  try {
    const temp = path.join(dir, path.basename(target));
    try {
      await pct.pull(caId, STEP_CA_ROOT_CERT, temp);
    } catch (err) {
      throw new PhoenixError(`cannot copy the root CA from CT ${caId}: ${(err as Error).message}`, {
        exitCode: 1,
        cause: err,
        hint: `CT ${caId} must be running with an initialised CA (${STEP_CA_ROOT_CERT}); its application script initialises it`,
      });
    }
    if (!isDryRun()) return fs.readFileSync(temp, 'utf8');
    const pem = known ?? (await readGuestFile(caId, STEP_CA_ROOT_CERT));
    if (pem === undefined) {
      throw new PhoenixError(`CT ${caId} has no root CA at ${STEP_CA_ROOT_CERT}`, { hint: `its application script initialises the CA` });
    }
    return pem;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
