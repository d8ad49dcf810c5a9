// Every feature with a port, for containers and VMs, by the name the
// manifests use (snake_case, as in `features: ["base_setup"]`). A feature's
// module (kebab-case, under lxc/ or vm/) is loaded only when a guest asks
// for it, and runs in-process: lxc-manager and vm-manager start no extra
// Node process per feature. Each module exports `install(id, context)`,
// which builds the feature's plan and applies it (lib/guest/feature-plan.mts).

import type { VmFeature } from '../config/types.mts';
import type { FeatureInstall, GuestKind } from '../guest/feature-steps.mts';

type Loader = () => Promise<{ install: FeatureInstall }>;

const LXC: Readonly<Record<string, Loader>> = {
  base_setup: () => import('./lxc/base-setup.mts'),
  docker: () => import('./lxc/docker.mts'),
  nvidia: () => import('./lxc/nvidia.mts'),
  ollama: () => import('./lxc/ollama.mts'),
  portainer: () => import('./lxc/portainer.mts'),
  python_api_service: () => import('./lxc/python-api-service.mts'),
  step_ca: () => import('./lxc/step-ca.mts'),
  step_cli: () => import('./lxc/step-cli.mts'),
  traefik: () => import('./lxc/traefik.mts'),
  trusted_ca: () => import('./lxc/trusted-ca.mts'),
  vllm: () => import('./lxc/vllm.mts'),
  sync_traefik_certs: () => import('./lxc/sync-traefik-certs.mts'),
};

/** The features a VM manifest can list: every one has a port. */
const VM: Readonly<Record<VmFeature, Loader>> = {
  base_setup: () => import('./vm/base-setup.mts'),
  trusted_ca: () => import('./vm/trusted-ca.mts'),
  step_cli: () => import('./vm/step-cli.mts'),
  docker: () => import('./vm/docker.mts'),
  docker_proxy: () => import('./vm/docker-proxy.mts'),
};

/** What `vm-manager sync` runs on a VM, in this order (the bash did it for 1001 only). */
const VM_SYNC: Readonly<Record<string, Loader>> = {
  sync_docker_certs: () => import('./vm/sync-docker-certs.mts'),
  sync_docker_proxy: () => import('./vm/sync-docker-proxy.mts'),
};

/** Container features with a port (the feature scripts of bin/lxc_setup, plus the sync helper). */
export const LXC_FEATURES: readonly string[] = Object.keys(LXC);
/** The features a VM manifest can list. */
export const VM_FEATURES: readonly VmFeature[] = Object.keys(VM) as VmFeature[];
/** The sync steps of `vm-manager sync`, in order. */
export const VM_SYNC_STEPS: readonly string[] = Object.keys(VM_SYNC);

function loaderOf(kind: GuestKind, name: string): Loader | undefined {
  const table = kind === 'lxc' ? LXC : { ...VM, ...VM_SYNC };
  return Object.hasOwn(table, name) ? (table as Readonly<Record<string, Loader>>)[name] : undefined;
}

/** Whether a feature of that name has a port for that kind of guest. */
export function hasPort(kind: GuestKind, name: string): boolean {
  return loaderOf(kind, name) !== undefined;
}

/** The install function of a feature, or undefined when there is no port (the bash script then runs, or its absence is reported). */
export async function loadFeature(kind: GuestKind, name: string): Promise<FeatureInstall | undefined> {
  const loader = loaderOf(kind, name);
  return loader ? (await loader()).install : undefined;
}
