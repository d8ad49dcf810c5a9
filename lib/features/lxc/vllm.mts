// vllm: vLLM built from source in a virtualenv (/opt/vllm), for a container
// with the NVIDIA user space (its own nvidia feature or its template's).
// Installed means /opt/vllm/bin/vllm runs. The model server unit is the
// application script's business, not this feature's.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from '../../core/errors.mts';
import { applyPlan, once, type FeaturePlan, type HostStep } from '../../guest/feature-plan.mts';
import { hasFeature, probe, pushHostFile, readGuestFile, requireRunning, runGuestCommand, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'vllm';

export const VENV_DIR = '/opt/vllm';
export const SOURCE_DIR = '/opt/vllm_repo';
export const VLLM_BIN = `${VENV_DIR}/bin/vllm`;
/** An optional TLS-intercepting proxy's CA, trusted before anything is downloaded (upstream: BASE/etc/certs/proxy_ca.crt). */
export const PROXY_CA_RELATIVE = 'etc/certs/proxy_ca.crt';
export const PROXY_CA_GUEST = '/usr/local/share/ca-certificates/proxy_ca.crt';

export const BUILD_PACKAGES = ['python3.11-full', 'python3.11-dev', 'python3.11-venv', 'python3-pip', 'build-essential', 'cmake', 'git', 'ninja-build'] as const;
/**
 * What vLLM is built from and against. The manifests carry no version for
 * it, so these are the upstream's values: PyTorch nightly for CUDA 12.8 and
 * vLLM's main branch, which is not reproducible; set VLLM_GIT_REF to a tag
 * to pin it.
 */
export const TORCH_INDEX_URL = 'https://download.pytorch.org/whl/nightly/cu128';
export const VLLM_REPO_URL = 'https://github.com/vllm-project/vllm.git';
export const VLLM_GIT_REF = 'main';
/** GPU architectures compiled for (Blackwell: 10.0 and 12.0) and build parallelism (upstream values). */
export const TORCH_CUDA_ARCH_LIST = '10.0 12.0';
export const BUILD_JOBS = 8;

const PYTHON_TIMEOUT_MS = 30 * 60_000;
const VENV_TIMEOUT_MS = 60 * 60_000;
const BUILD_TIMEOUT_MS = 4 * 60 * 60_000;

export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  if (!hasFeature(context, ctid, 'nvidia')) {
    throw new PhoenixError(`${FEATURE}: CT ${ctid} needs the nvidia feature (on itself or on the container it was cloned from)`);
  }
  const smi = once(() => probe(ctid, ['nvidia-smi']));
  let smiCode = 0;
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'require',
        id: 'nvidia-smi',
        title: 'nvidia-smi runs',
        check: async () => {
          smiCode = (await smi()).code;
          return smiCode === 0;
        },
        message: () => `nvidia-smi ${smiCode === 127 ? 'is missing' : `fails (exit ${smiCode})`} in CT ${ctid}`,
        hint: 'the nvidia feature installs it; the host must pass the GPU through',
      },
      ...proxyCaSteps(ctid, context),
      {
        kind: 'host',
        id: 'vllm',
        title: `build vLLM ${VLLM_GIT_REF} into ${VENV_DIR}`,
        check: async () => (await probe(ctid, [VLLM_BIN, '--version'])).code === 0,
        apply: async () => {
          await runGuestScript(ctid, 'vllm_python.sh', BUILD_PACKAGES, { feature: FEATURE, label: 'installing Python 3.11 and the build tools', timeoutMs: PYTHON_TIMEOUT_MS });
          await runGuestScript(ctid, 'vllm_venv.sh', [VENV_DIR, TORCH_INDEX_URL], { feature: FEATURE, label: `creating ${VENV_DIR} with PyTorch`, timeoutMs: VENV_TIMEOUT_MS });
          await runGuestScript(ctid, 'vllm_build.sh', [VENV_DIR, SOURCE_DIR, VLLM_REPO_URL, VLLM_GIT_REF, TORCH_CUDA_ARCH_LIST, String(BUILD_JOBS)], {
            feature: FEATURE,
            label: `building vLLM ${VLLM_GIT_REF}`,
            timeoutMs: BUILD_TIMEOUT_MS,
          });
          return [`built vLLM ${VLLM_GIT_REF} into ${VENV_DIR}`];
        },
      },
    ],
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}

/** The proxy's CA trusted before anything is downloaded, when the host has one. */
function proxyCaSteps(ctid: string, context: FeatureContext): HostStep[] {
  const hostFile = path.join(context.options.baseDir, PROXY_CA_RELATIVE);
  let pem: string;
  try {
    pem = fs.readFileSync(hostFile, 'utf8');
  } catch {
    return [];
  }
  return [
    {
      kind: 'host',
      id: 'proxy-ca',
      title: `trust the proxy CA ${hostFile}`,
      check: async () => (await readGuestFile(ctid, PROXY_CA_GUEST)) === pem,
      apply: async () => {
        await pushHostFile(ctid, hostFile, PROXY_CA_GUEST, { feature: FEATURE, label: 'copying the proxy CA', perms: '0644', mkdir: true });
        await runGuestCommand(ctid, ['update-ca-certificates'], { feature: FEATURE, label: 'updating the trust store' });
        return [`trusted the proxy CA ${hostFile}`];
      },
    },
  ];
}
