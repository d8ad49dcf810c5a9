// The LXC features by name, for lxc-manager's apply_features: each loads
// its module only when a container asks for it, and runs in-process (no
// extra Node start per feature).

import type { FeatureInstall } from '../../guest/container.mts';

type Loader = () => Promise<{ install: FeatureInstall }>;

const LOADERS: Readonly<Record<string, Loader>> = {
  base_setup: () => import('./base-setup.mts'),
  docker: () => import('./docker.mts'),
  nvidia: () => import('./nvidia.mts'),
  ollama: () => import('./ollama.mts'),
  portainer: () => import('./portainer.mts'),
  python_api_service: () => import('./python-api-service.mts'),
  step_ca: () => import('./step-ca.mts'),
  step_cli: () => import('./step-cli.mts'),
  traefik: () => import('./traefik.mts'),
  trusted_ca: () => import('./trusted-ca.mts'),
  vllm: () => import('./vllm.mts'),
  sync_traefik_certs: () => import('./sync-traefik-certs.mts'),
};

/** Names with a port (the feature scripts of bin/lxc_setup, plus the sync helper). */
export const PORTED_FEATURES: readonly string[] = Object.keys(LOADERS);

/** The install function of a feature, or undefined when there is none (the bash then failed: script not found). */
export async function loadFeature(name: string): Promise<FeatureInstall | undefined> {
  const loader = LOADERS[name];
  return loader ? (await loader()).install : undefined;
}
