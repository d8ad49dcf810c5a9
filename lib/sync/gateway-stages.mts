// Stages 8 and 9 of `sync all`: Traefik's files installed in its container
// (restarted only for a changed static file), then nginx's, checked with
// `nginx -t` before the reload and put back when the check fails.

import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../core/errors.mts';
import * as pct from '../pve/pct.mts';
import { isDryRun } from '../core/context.mts';
import { runChild } from './child.mts';
import { deployGuestFile, restoreGuestFile, type DeployedFile } from './guestfiles.mts';
import { STATIC_RELATIVE } from '../features/lxc/traefik-static.mts';
import { DYNAMIC_RELATIVE, traefikCt } from '../gateway/traefik.mts';
import { gatewayModel, renderGatewayFiles, NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE } from '../gateway/nginx.mts';
import { ensureGuestLink, restoreGuestLink } from '../gateway/guest.mts';
import { SITE_ENABLED, SITE_LINK_TARGET } from '../gateway/nginx-app.mts';
import {
  changed,
  unchanged,
  skipped,
  failed,
  childFailure,
  guestState,
  type StageResult,
  type SyncContext,
} from './stage-kit.mts';

// ---------------------------------------------------------------- stage 8: Traefik

export async function traefik(ctx: SyncContext): Promise<StageResult> {
  let id: string;
  try {
    id = traefikCt(ctx.config).id;
  } catch (err) {
    if (err instanceof ConfigError) return skipped(err.message);
    throw err;
  }
  const state = await guestState('lxc', id);
  if (state !== 'running') return skipped(`CT ${id} is ${state === 'absent' ? 'not created' : 'not running'}`);
  const generated = path.join(ctx.options.baseDir, DYNAMIC_RELATIVE);
  const run = await runChild(ctx, 'generate_traefik_config.sh', [], [generated, path.join(ctx.options.baseDir, STATIC_RELATIVE)]);
  const failure = childFailure(run);
  if (failure) return failure;
  const staticGenerated = path.join(ctx.options.baseDir, STATIC_RELATIVE);
  const files = [
    { host: staticGenerated, guestPath: '/etc/traefik/traefik.yml' },
    { host: generated, guestPath: '/etc/traefik/dynamic/dynamic_conf.yml' },
  ];
  const missing = files.filter((f) => !fs.existsSync(f.host));
  if (missing.length > 0) {
    if (isDryRun()) return changed(`CT ${id}: would install the generated ${files.map((f) => f.guestPath).join(' and ')} where they differ`);
    return failed(`generate_traefik_config.sh left no ${missing.map((f) => f.host).join(' or ')}`, run.command);
  }
  const [staticText, dynamicText] = files.map((f) => fs.readFileSync(f.host, 'utf8')) as [string, string];
  const staticFile = await deployGuestFile(id, { guestPath: '/etc/traefik/traefik.yml', text: staticText }, ctx.scratch);
  const dynamicFile = await deployGuestFile(id, { guestPath: '/etc/traefik/dynamic/dynamic_conf.yml', text: dynamicText }, ctx.scratch);
  const changedFiles = [staticFile, dynamicFile].filter((f) => f.outcome !== 'unchanged').map((f) => f.guestPath);
  if (staticFile.outcome !== 'unchanged') {
    // The static file is read only at start (the bash's `systemctl start` left the old one in force).
    await pct.exec(id, ['systemctl', 'restart', 'traefik']);
  }
  if (changedFiles.length === 0) return unchanged(`CT ${id}: traefik.yml and dynamic_conf.yml up to date`);
  return changed(`CT ${id}: ${changedFiles.join(', ')}${staticFile.outcome !== 'unchanged' ? '; traefik restarted' : ' (picked up by the file provider)'}`);
}

// ---------------------------------------------------------------- stage 9: Nginx

export async function nginx(ctx: SyncContext): Promise<StageResult> {
  const model = gatewayModel(ctx.config);
  const id = model.gatewayId;
  const state = await guestState('lxc', id);
  if (state !== 'running') return skipped(`CT ${id} is ${state === 'absent' ? 'not created' : 'not running'}`);
  const relatives = [NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE];
  const run = await runChild(ctx, 'generate_nginx_gateway_config.sh', [], relatives.map((r) => path.join(ctx.options.baseDir, r)));
  const failure = childFailure(run);
  if (failure) return failure;
  const rendered = new Map(renderGatewayFiles(model).map((f) => [f.relative, f.text]));
  const text = (relative: string): string => {
    const file = path.join(ctx.options.baseDir, relative);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : (rendered.get(relative) as string);
  };
  // The site lives in sites-available; sites-enabled/gateway is the link
  // nginx.conf's include reads through, as CT 101's application script and
  // the bash toolkit leave it (a copy there would hide later edits).
  const files = [
    { guestPath: '/etc/nginx/nginx.conf', text: text(NGINX_CONF_RELATIVE) },
    { guestPath: '/etc/nginx/sites-available/gateway', text: text(SITE_RELATIVE) },
    { guestPath: '/etc/nginx/stream.d/stream-gateway.conf', text: text(STREAM_RELATIVE) },
  ];
  const deployed: DeployedFile[] = [];
  for (const file of files) deployed.push(await deployGuestFile(id, file, ctx.scratch));
  const link = await ensureGuestLink(id, SITE_ENABLED, SITE_LINK_TARGET);
  let removedDefault = false;
  for (const stale of ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/default.conf']) {
    if (!isDryRun() && (await pct.exec(id, ['test', '-e', stale], { mutating: false, allowFailure: true, quiet: true })).code === 0) {
      await pct.exec(id, ['rm', '-f', stale]);
      removedDefault = true;
    }
  }
  const changedFiles = deployed.filter((d) => d.outcome !== 'unchanged');
  if (changedFiles.length === 0 && !removedDefault && !link) return unchanged(`CT ${id}: gateway configuration up to date`);
  const check = await pct.exec(id, ['nginx', '-t'], { allowFailure: true });
  if (check.code !== 0) {
    if (link) await restoreGuestLink(id, link, 'nginx');
    for (const d of changedFiles.reverse()) await restoreGuestFile(id, d, ctx.scratch);
    const said = (check.stderr || check.stdout).trim().split('\n');
    const why = said.find((l) => /\[emerg\]|\[error\]/.test(l)) ?? said.filter((l) => /failed/i.test(l)).at(-1) ?? `exit ${check.code}`;
    return failed(`nginx rejected the new configuration, the previous files were put back: ${why}`, `pct exec ${id} -- nginx -t`);
  }
  await pct.exec(id, ['systemctl', 'reload', 'nginx']);
  return changed(`CT ${id}: ${[...changedFiles.map((d) => d.guestPath), ...(link ? [`${SITE_ENABLED} linked`] : []), ...(removedDefault ? ['default site removed'] : [])].join(', ')}; nginx reloaded`);
}
