// The Nginx gateway container (CT 101): what its application script does,
// from the host, through pct.
//
// 1. nginx with the stream module is installed when missing: nginx and
//    libnginx-mod-stream, the two packages the generated files need (Debian
//    12 and Ubuntu 24.04 ship both); a container that already has
//    nginx-full, which the bash installed, is left as it is;
// 2. the container trusts the Phoenix root CA: the host copy is pushed to the
//    system trust store and update-ca-certificates run (the trusted_ca
//    feature's own code; its fingerprint is computed from that file);
// 3. the ACME webroot and nginx's cache directory exist and belong to
//    www-data, as the bash left them (chowned only when something in them
//    belongs to someone else);
// 4. the generated nginx.conf, sites-available/gateway and
//    stream.d/stream-gateway.conf are installed from <base>/etc/nginx
//    (generated first when missing), sites-enabled/gateway is the link to
//    ../sites-available/gateway the bash made (a copy an earlier run left
//    there is replaced by the link, so an edit of sites-available is what
//    nginx reads), and Debian's default site disabled: it also claims
//    `listen 80 default_server`, and the bash re-linked a placeholder
//    default after sync had installed the gateway, which broke `nginx -t`;
// 5. `nginx -t` in the container before any reload; when nginx refuses the
//    new files they are put back and nothing is reloaded;
// 6. nginx enabled, reloaded (or started) only when something changed, and
//    checked to be active.
//
// Other files in stream.d, conf.d or sites-enabled are never deleted (the
// bash emptied stream.d and conf.d on every run).

import fs from 'node:fs';
import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { info, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { installedPackages, requireRunning, runGuestScript, type FeatureContext } from '../guest/container.mts';
import { install as installTrustedCa } from '../features/lxc/trusted-ca.mts';
import { ensureRootCaOnHost } from '../guest/root-ca.mts';
import { NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE, planGatewayFiles, writeGatewayFiles, type GatewayModel, type GatewayPlan } from './nginx.mts';
import { ensureGuestLink, ensureGuestOwnedDirs, guestPathPresent, installGuestFiles, journalTail, missingGuestFiles, requireRole, restoreGuestFiles, restoreGuestLink, unitIs } from './guest.mts';

const WHAT = 'nginx gateway';
export const UNIT = 'nginx';
/** Installed when nginx is missing: the server and its stream module (stream{} and ssl_preread). */
export const NGINX_PACKAGES = ['nginx', 'libnginx-mod-stream'] as const;
/** nginx-full already carries the stream module. */
const FULL_PACKAGE = 'nginx-full';

/** Where each generated file goes in the container. */
export const INSTALLED_PATHS: Readonly<Record<string, string>> = {
  [NGINX_CONF_RELATIVE]: '/etc/nginx/nginx.conf',
  [SITE_RELATIVE]: '/etc/nginx/sites-available/gateway',
  [STREAM_RELATIVE]: '/etc/nginx/stream.d/stream-gateway.conf',
};
/** The site nginx reads (nginx.conf includes sites-enabled/*): a link to the installed site. */
export const SITE_ENABLED = '/etc/nginx/sites-enabled/gateway';
/** Relative, as Debian links its sites, so it points at the same file seen from the host's copy of the tree too. */
export const SITE_LINK_TARGET = '../sites-available/gateway';
/** The ACME webroot and nginx's cache, owned by the worker user as the bash left them. */
export const WEB_DIRS = ['/var/www/html', '/var/cache/nginx'] as const;
export const WEB_OWNER = { user: 'www-data', group: 'www-data' } as const;
/**
 * Default sites that also claim `listen 80 default_server`: Debian's (and
 * the bash's placeholder of the same name), and nginx.org packages' one.
 */
export const DEFAULT_SITES = ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/default.conf'] as const;

export interface AppResult {
  ctid: string;
  changes: string[];
}

/** The generated files: from <base>/etc/nginx, generated there first when one is missing. */
async function gatewayFiles(context: FeatureContext, plan: GatewayPlan): Promise<{ model: GatewayModel; texts: Map<string, string> }> {
  const missing = plan.files.filter((file) => !fs.existsSync(file.target));
  if (missing.length > 0) {
    info(`${missing.map((file) => file.relative).join(', ')} missing under ${context.options.baseDir}: generating the gateway configuration`);
    await writeGatewayFiles(plan);
    // In dry-run nothing was written; the rendered text is what a real run installs.
    return { model: plan.model, texts: new Map(plan.files.map((file) => [file.relative, file.text])) };
  }
  if (plan.pending.length > 0) {
    warn(`${plan.pending.map((file) => file.relative).join(', ')} under ${context.options.baseDir} differ from what the manifests give now; installing them as they are (generate_nginx_gateway_config.sh, which sync all runs, brings them up to date)`);
  }
  return { model: plan.model, texts: new Map(plan.files.map((file) => [file.relative, fs.readFileSync(file.target, 'utf8')])) };
}

async function ensureNginx(ctid: string, changes: string[]): Promise<void> {
  const installed = await installedPackages(ctid, [FULL_PACKAGE, ...NGINX_PACKAGES]);
  if (installed.has(FULL_PACKAGE) || NGINX_PACKAGES.every((name) => installed.has(name))) return;
  const missing = NGINX_PACKAGES.filter((name) => !installed.has(name));
  await runGuestScript(ctid, 'apt_install.sh', missing, { feature: WHAT, label: `installing ${missing.join(' ')}` });
  changes.push(`installed ${missing.join(' ')}`);
}

/** The certificate and key files the rendered site names (none in passthrough mode). */
function tlsFiles(model: GatewayModel): { path: string; host?: string }[] {
  if (model.mode === 'passthrough') return [];
  return [model.serverCert, model.serverKey, model.clientCert, model.clientKey];
}

export async function deployGateway(ctid: string, context: FeatureContext): Promise<AppResult> {
  const changes: string[] = [];
  await requireRunning(ctid);
  const plan = planGatewayFiles(context.config, context.options.baseDir, context.options.hostRoot);
  requireRole(ctid, plan.model.gatewayId, 'gateway container', `certificate '${context.config.hypervisor.gateway?.client_certificate ?? 'nginx-gateway-client'}' in ${context.config.paths.certificates}`);
  const { model, texts } = await gatewayFiles(context, plan);

  await ensureNginx(ctid, changes);

  const root = await ensureRootCaOnHost(context);
  info(`root CA ${root.file}: sha256 fingerprint ${root.fingerprint}`);
  const trust = await installTrustedCa(ctid, context);
  changes.push(...trust.changes);
  changes.push(...(await ensureGuestOwnedDirs(ctid, WEB_DIRS, WEB_OWNER)));

  const expected = tlsFiles(model);
  const missing = new Set(await missingGuestFiles(ctid, expected.map((file) => file.path)));
  const absent = expected.filter((file) => missing.has(file.path)).map((file) => (file.host ? `${file.path} (host ${file.host})` : file.path));
  if (absent.length > 0) {
    const message = `the gateway's certificates are missing in CT ${ctid}: ${absent.join(', ')}`;
    const hint = 'certificate-renewal-manager.sh issues them from certificate-manifest.json (lxc-manager runs it before creating a container)';
    if (!isDryRun()) throw new PhoenixError(message, { hint });
    warn(`${message}; a real run stops here (${hint})`);
  }

  const wanted = Object.entries(INSTALLED_PATHS).map(([relative, guestPath]) => ({ path: guestPath, content: texts.get(relative) as string, perms: '0644' }));
  const installed = await installGuestFiles(ctid, wanted, WHAT);
  for (const file of installed) changes.push(`${file.previous === undefined ? 'installed' : 'updated'} ${file.path}`);
  const link = await ensureGuestLink(ctid, SITE_ENABLED, SITE_LINK_TARGET);
  if (link) changes.push(`linked ${SITE_ENABLED} to ${SITE_LINK_TARGET}${link.previousContent !== undefined ? ' (was a copy)' : ''}`);
  for (const site of DEFAULT_SITES) {
    if (await guestPathPresent(ctid, site)) {
      await pct.exec(ctid, ['rm', '-f', site]);
      changes.push(`disabled the default site ${site}: it also claims listen 80 default_server`);
    }
  }

  const active = await unitIs(ctid, 'active', UNIT);
  const configChanged = installed.length > 0 || link !== undefined;
  if (configChanged || !active) {
    const check = await pct.exec(ctid, ['nginx', '-t'], { allowFailure: true });
    if (check.code !== 0) {
      if (link) await restoreGuestLink(ctid, link, WHAT);
      await restoreGuestFiles(ctid, installed, WHAT);
      const reason = (check.stderr || check.stdout).trim().split('\n').filter((line) => /emerg|alert|crit|error|failed/i.test(line)).join('; ') || `exit ${check.code}`;
      throw new PhoenixError(`nginx -t failed in CT ${ctid}; nginx was not reloaded and the previous files are back: ${reason}`, {
        hint: 'fix what nginx names (often a certificate file or the stream module), then run this script again',
      });
    }
  }
  if (!(await unitIs(ctid, 'enabled', UNIT))) {
    await pct.exec(ctid, ['systemctl', 'enable', UNIT]);
    changes.push('enabled nginx');
  }
  if (configChanged || !active) {
    await pct.exec(ctid, ['systemctl', 'reload-or-restart', UNIT]);
    changes.push(active ? 'reloaded nginx' : 'started nginx');
  }
  if (isDryRun()) return { ctid, changes };
  if (!(await unitIs(ctid, 'active', UNIT))) {
    const journal = await journalTail(ctid, UNIT);
    throw new PhoenixError(`nginx is not active in CT ${ctid} after the reload`, { hint: journal ? `journalctl -u nginx:\n${journal}` : `look at journalctl -u nginx in CT ${ctid}` });
  }
  return { ctid, changes };
}
