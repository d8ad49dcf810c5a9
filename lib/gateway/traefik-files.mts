// generate_traefik_config's work: Traefik's dynamic file (traefik.mts) and
// static file (the traefik feature's traefik-static.mts) from the
// manifests, written under <base>/etc/traefik for the Traefik container's
// application script and `sync all` to install.

import path from 'node:path';
import type { PhoenixConfig } from '../config/load.mts';
import { withHostLock, type ScriptContext } from '../core/main.mts';
import { isDryRun } from '../core/context.mts';
import { writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import { debug, info, success, warn } from '../core/log.mts';
import { caUrl } from '../guest/root-ca.mts';
import { STATIC_RELATIVE, renderTraefikStatic } from '../features/lxc/traefik-static.mts';
import { DYNAMIC_RELATIVE, renderTraefikDynamic, traefikCt } from './traefik.mts';

/**
 * Both of Traefik's files rendered from the manifests and written under
 * <base>/etc/traefik (atomically, under the host lock), with what each
 * route is and why something is not routed reported on the way.
 */
export async function generateTraefikFiles(config: PhoenixConfig, context: ScriptContext): Promise<number> {
  info('Generating the Traefik configuration...');
  const { text, model } = await renderTraefikDynamic(config);
  for (const route of model.routes) debug(`route ${route.host} -> ${route.url ?? 'api@internal'} (${route.source})`);
  for (const route of model.websecure) debug(`websecure route ${route.host} (${model.acme ? 'certificate from the Step-CA ACME resolver' : "Traefik's default certificate"})`);
  for (const note of model.notes) info(note);
  for (const reason of model.skipped) warn(`not routed: ${reason}`);
  if (!model.certificate) warn('the certificate manifest issues no server certificate for the Traefik CT: Traefik will serve its default certificate and nginx will refuse it');

  const traefikId = traefikCt(config).id;
  const featureContext = { config, options: context.options };
  const staticFile = await renderTraefikStatic(featureContext, traefikId, caUrl(featureContext, traefikId));
  const targets = [
    { relative: DYNAMIC_RELATIVE, text, what: `dynamic configuration (${model.routes.length} mesh routes, ${model.websecure.length} websecure routes)` },
    { relative: STATIC_RELATIVE, text: staticFile.text, what: `static configuration (from ${staticFile.source})` },
  ];
  const outcomes: WriteOutcome[] = await withHostLock(context, async () =>
    targets.map((target) => writeFileAtomic(path.join(context.options.baseDir, target.relative), target.text, { mode: 0o644 })),
  );
  targets.forEach((target, i) => {
    const file = path.join(context.options.baseDir, target.relative);
    if (outcomes[i] === 'unchanged') success(`Traefik ${target.what} unchanged at ${file}`);
    else success(`Traefik ${target.what} ${isDryRun() ? 'planned' : 'generated'} at ${file}`);
  });
  return 0;
}
