#!/usr/bin/env node
// generate_nginx_gateway_config: the Nginx gateway's nginx.conf, site and
// stream files under <base>/etc/nginx/ from the manifests, in the TLS
// topology of gateway.mode. Checked with `nginx -t` (where nginx is on PATH)
// before anything is replaced; a rejected configuration is never installed.
// Deploying the files into the gateway CT stays with the caller (sync all).

import path from 'node:path';
import fs from 'node:fs';
import { runMain, takeStandardFlags, withHostLock } from '../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config.mts';
import { findNginx, gatewayModel, renderGatewayFiles, validateWithNginx } from '../lib/gateway/nginx.mts';
import { writeFileAtomic } from '../lib/fs.mts';
import { info, success, warn } from '../lib/log.mts';

const USAGE = `Usage: generate_nginx_gateway_config.sh [--dry-run]

Writes the Nginx gateway configuration from the manifests:
  <base>/etc/nginx/nginx.conf
  <base>/etc/nginx/sites-available/gateway
  <base>/etc/nginx/stream.d/stream-gateway.conf
The TLS topology follows gateway.mode in the hypervisor config (hybrid,
passthrough or mtls). When nginx is installed, the files are checked with
'nginx -t' first and nothing is replaced if nginx rejects them.

  --dry-run   print what would change, change nothing
`;

await runMain('generate_nginx_gateway_config.sh', async (context) => {
  if (!takeStandardFlags(context, USAGE)) return 0;

  const config = loadConfig(resolveConfigPaths());
  const model = gatewayModel(config);
  info(`Generating the Nginx gateway configuration (mode ${model.mode}, Traefik at ${model.traefikAddress})...`);
  const files = renderGatewayFiles(model).map((file) => ({ ...file, target: path.join(context.options.baseDir, file.relative) }));
  const pending = files.filter((file) => !sameContent(file.target, file.text));
  if (pending.length === 0) {
    success(`Nginx gateway configuration unchanged (${files.map((file) => file.relative).join(', ')})`);
    return 0;
  }

  const nginx = findNginx();
  if (nginx) {
    await validateWithNginx(model, files, nginx);
    info('nginx -t accepted the generated configuration');
  } else {
    warn('nginx is not installed here: the generated configuration was not checked with nginx -t');
  }
  await withHostLock(context, async () => {
    for (const file of files) writeFileAtomic(file.target, file.text, { mode: 0o644 });
  });
  success(`Nginx gateway configuration ${context.options.dryRun ? 'planned' : 'written'}: ${pending.map((file) => file.relative).join(', ')}`);
  return 0;
});

function sameContent(file: string, text: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8') === text && (fs.statSync(file).mode & 0o7777) === 0o644;
  } catch {
    return false;
  }
}
