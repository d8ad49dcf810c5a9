// The Traefik mesh container (CT 102): what its application script does,
// from the host, through pct.
//
// 1. wait, for a bounded time, until the CA is ready: the host has the root
//    CA copy (pulled from the CA container when it has none yet) and
//    `step ca health` answers from inside this container (the bash looped
//    forever on a marker file in CT 103's shared directory);
// 2. the root CA in /etc/traefik/certs/ca.pem and `step` bootstrapped
//    against the CA URL of the manifests with the fingerprint computed on the
//    host from that copy;
// 3. the static and dynamic configuration generated from the manifests
//    (also kept under <base>/etc/traefik) and installed; the ACME store
//    created with mode 0600 when the Step-CA resolver is on;
// 4. Traefik restarted only when its static configuration or the CA changed
//    (it watches the dynamic directory itself), started when it is not
//    running, and checked to be active.

import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { info } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { missingCommands, probe, pushContent, readGuestFile, requireRunning, type FeatureContext } from '../guest/container.mts';
import { caUrl, ensureRootCaOnHost, stepCaCtid, type RootCa } from '../guest/root-ca.mts';
import { BINARY, CA_PEM, DYNAMIC_DIR, isBootstrapped, STATIC_CONFIG, STEP_DEFAULTS } from '../features/lxc/traefik.mts';
import { DYNAMIC_RELATIVE, renderTraefikDynamic, traefikCt } from './traefik.mts';
import { ACME_STORAGE, STATIC_RELATIVE, renderTraefikStatic } from '../features/lxc/traefik-static.mts';
import { installGuestFile, installGuestFiles, journalTail, requireRole, unitIs } from './guest.mts';

const WHAT = 'traefik mesh';
export const UNIT = 'traefik';
export const DYNAMIC_CONFIG = `${DYNAMIC_DIR}/dynamic_conf.yml`;
/** How long the script waits for the CA when the caller gives no --ca-timeout. */
export const DEFAULT_CA_TIMEOUT_SECONDS = 300;
/** How often the wait says it is still waiting. */
const PROGRESS_EVERY_MS = 30_000;

export interface TraefikAppOptions {
  caTimeoutSeconds: number;
  pollIntervalMs: number;
}

export interface AppResult {
  ctid: string;
  changes: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Poll `attempt` until it returns a value or the deadline passes; the last
 * failure is the error. Dry-run tries once: it waits for nothing.
 */
async function until<T>(what: string, deadline: number, pollMs: number, attempt: () => Promise<T | Error>): Promise<T> {
  const started = Date.now();
  let lastProgress = started;
  for (;;) {
    const outcome = await attempt();
    if (!(outcome instanceof Error)) return outcome;
    if (isDryRun() || Date.now() + pollMs > deadline) throw outcome;
    if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
      info(`still waiting for ${what} (${Math.round((Date.now() - started) / 1000)} s)...`);
      lastProgress = Date.now();
    }
    await sleep(pollMs);
  }
}

/** The host's root CA copy, pulled from the CA container once it has one. */
async function waitForRootCa(context: FeatureContext, deadline: number, options: TraefikAppOptions): Promise<RootCa> {
  const caId = stepCaCtid(context);
  return until<RootCa>('the root CA', deadline, options.pollIntervalMs, async () => {
    try {
      return await ensureRootCaOnHost(context);
    } catch (err) {
      if (!(err instanceof PhoenixError)) throw err;
      // Nothing will bring the CA up while this run waits.
      if ((await pct.status(caId)) === 'absent') {
        throw new PhoenixError(`the host has no root CA copy and the CA container ${caId} does not exist`, { hint: `create it first: phoenix create ${caId}` });
      }
      return new PhoenixError(`the CA did not become ready within ${options.caTimeoutSeconds} s: ${err.message}`, { hint: err.hint ?? `check CT ${caId}` });
    }
  });
}

/** `step ca health` from inside the Traefik container, against the CA URL it is configured with. */
async function waitForCaHealth(ctid: string, ca: string, context: FeatureContext, deadline: number, options: TraefikAppOptions): Promise<void> {
  await until<boolean>(`the CA at ${ca}`, deadline, options.pollIntervalMs, async () => {
    const health = await probe(ctid, ['step', 'ca', 'health', '--ca-url', ca, '--root', CA_PEM]);
    if (health.code === 0) return true;
    const why = (health.stderr || health.stdout).trim().split('\n').pop() || `exit ${health.code}`;
    return new PhoenixError(`the CA at ${ca} did not become ready within ${options.caTimeoutSeconds} s (step ca health in CT ${ctid}: ${why})`, {
      hint: `check the step-ca service in CT ${stepCaCtid(context)} and that CT ${ctid} can reach ${ca}`,
    });
  });
}


/** Runs the changing part of the work; the script passes the host lock here. */
export type LockRunner = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * Set up the Traefik container. The wait for the root CA runs before
 * `withLock`, so a run waiting for the CA does not keep the host lock from
 * whatever is bringing the CA up.
 */
export async function deployTraefik(ctid: string, context: FeatureContext, options: TraefikAppOptions, withLock: LockRunner = (fn) => fn()): Promise<AppResult> {
  const config = context.config;
  await requireRunning(ctid);
  const traefik = traefikCt(config);
  requireRole(ctid, traefik.id, 'Traefik container', `it lists the traefik feature in ${config.paths.lxc}`);
  const ca = caUrl(context, ctid);
  if (!(await pct.test(ctid, '-x', BINARY))) {
    throw new PhoenixError(`Traefik is not installed in CT ${ctid} (${BINARY})`, { hint: 'list traefik in the features of the CT (lxc-manager installs features before the application script)' });
  }

  // Rendered first: a manifest error stops the run before it waits or changes anything.
  const dynamic = await renderTraefikDynamic(config);
  const staticFile = await renderTraefikStatic(context, ctid, ca);

  const deadline = Date.now() + options.caTimeoutSeconds * 1000;
  info(`waiting up to ${options.caTimeoutSeconds} s for the CA (${ca})...`);
  const root = await waitForRootCa(context, deadline, options);
  info(`root CA ${root.file}: sha256 fingerprint ${root.fingerprint}`);
  return withLock(() => configure(ctid, context, options, { ca, root, deadline, staticFile, dynamic }));
}

interface Prepared {
  ca: string;
  root: RootCa;
  deadline: number;
  staticFile: { text: string };
  dynamic: Awaited<ReturnType<typeof renderTraefikDynamic>>;
}

async function configure(ctid: string, context: FeatureContext, options: TraefikAppOptions, prepared: Prepared): Promise<AppResult> {
  const changes: string[] = [];
  const { ca, root, deadline, staticFile, dynamic } = prepared;
  const caFile = await installGuestFile(ctid, CA_PEM, root.pem, '0644', WHAT);
  if (caFile) changes.push(`${caFile.previous === undefined ? 'installed' : 'updated'} ${CA_PEM} (sha256 ${root.fingerprint})`);
  if ((await missingCommands(ctid, ['step'])).length > 0) {
    throw new PhoenixError(`the step CLI is missing in CT ${ctid}`, { hint: 'list step_cli in the features of the CT (lxc-manager installs it before the application script)' });
  }
  try {
    await waitForCaHealth(ctid, ca, context, deadline, options);
  } catch (err) {
    if (!isDryRun()) throw err;
    info(`DRY-RUN: ${(err as Error).message}; a real run waits up to ${options.caTimeoutSeconds} s`);
  }
  if (!isBootstrapped(await readGuestFile(ctid, STEP_DEFAULTS), ca, root.fingerprint)) {
    await pct.exec(ctid, ['step', 'ca', 'bootstrap', '--ca-url', ca, '--fingerprint', root.fingerprint, '--force']);
    changes.push(`bootstrapped step against ${ca}`);
  }

  // The host keeps the files it installs, where generate_traefik_config.sh writes them.
  for (const [relative, text] of [
    [STATIC_RELATIVE, staticFile.text],
    [DYNAMIC_RELATIVE, dynamic.text],
  ] as const) {
    writeFileAtomic(path.join(context.options.baseDir, relative), text, { mode: 0o644 });
  }
  const installed = await installGuestFiles(
    ctid,
    [
      { path: STATIC_CONFIG, content: staticFile.text, perms: '0644' },
      { path: DYNAMIC_CONFIG, content: dynamic.text, perms: '0644' },
    ],
    WHAT,
  );
  const staticChanged = installed.some((file) => file.path === STATIC_CONFIG);
  for (const file of installed) {
    const detail = file.path === DYNAMIC_CONFIG ? ` (${dynamic.model.routes.length} mesh routes, ${dynamic.model.websecure.length} websecure routes)` : '';
    changes.push(`${file.previous === undefined ? 'installed' : 'updated'} ${file.path}${detail}`);
  }

  if (dynamic.model.acme) {
    if (!(await pct.test(ctid, '-f', ACME_STORAGE))) {
      await pushContent(ctid, ACME_STORAGE, '', { feature: WHAT, label: `creating ${ACME_STORAGE}`, perms: '0600' });
      changes.push(`created ${ACME_STORAGE} (0600)`);
    } else {
      const mode = await probe(ctid, ['stat', '-c', '%a', ACME_STORAGE]);
      if (mode.stdout.trim() !== '600') {
        await pct.exec(ctid, ['chmod', '600', ACME_STORAGE]);
        changes.push(`set ${ACME_STORAGE} to 0600 (was ${mode.stdout.trim() || 'unknown'}): Traefik refuses a store others can read`);
      }
    }
  }

  if (!(await unitIs(ctid, 'enabled', UNIT))) {
    await pct.exec(ctid, ['systemctl', 'enable', UNIT]);
    changes.push('enabled traefik');
  }
  const active = await unitIs(ctid, 'active', UNIT);
  if (!active || staticChanged || caFile) {
    await pct.exec(ctid, ['systemctl', 'restart', UNIT]);
    changes.push(active ? `restarted traefik (${staticChanged ? 'static configuration' : 'root CA'} changed)` : 'started traefik');
  }
  if (isDryRun()) return { ctid, changes };
  if (!(await unitIs(ctid, 'active', UNIT))) {
    const journal = await journalTail(ctid, UNIT);
    throw new PhoenixError(`traefik is not active in CT ${ctid}`, { hint: journal ? `journalctl -u traefik:\n${journal}` : `look at journalctl -u traefik in CT ${ctid}` });
  }
  return { ctid, changes };
}
