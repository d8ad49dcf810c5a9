// docker: Docker Engine from Docker's apt repository, the VM's user in the
// `docker` group, and, when the certificate manifest names a Docker daemon
// certificate for the VM, the TCP endpoint :2376 with mutual TLS.
//
// In place means: the repository and the five packages are installed,
// /etc/docker/daemon.json and the systemd drop-in hold exactly what the
// manifests give, the TLS files are the host's (key 0600), the service is
// enabled and running, the user is in the group and the Swarm conntrack
// rule is loaded. The bash stopped at "docker is active", so a re-run
// never repaired TLS or daemon.json; its endpoint took any client (`tls`
// without `tlsverify`) and its key was 0644.
//
// The TLS files and daemon.json are shared with feature_sync_docker_certs
// and feature_sync_docker_proxy, which export nothing of their own.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { ConfigError, PhoenixError } from '../../core/errors.mts';
import { info } from '../../core/log.mts';
import { ensureRootCaOnHost } from '../../guest/root-ca.mts';
import type { CertificateEntry, VmConfig } from '../../config/types.mts';
import {
  APT_TIMEOUT_MS,
  applyPlan,
  dockerDaemonCertificate,
  onHost,
  readHostFile,
  vmConfig,
  vmPointer,
  type CommandStep,
  type FeatureContext,
  type FeaturePlan,
  type FeatureResult,
  type FileStep,
  type Step,
} from '../../guest/vm-plan.mts';

export const FEATURE = 'docker';

/** Docker's apt repository; the distribution (ubuntu, debian) and codename come from the VM's /etc/os-release. */
export const DOCKER_APT_URL = 'https://download.docker.com/linux';
/** The keyring path the bash used, kept so VMs it provisioned converge instead of getting a second source. */
export const DOCKER_KEYRING = '/usr/share/keyrings/docker-archive-keyring.gpg';
export const DOCKER_LIST = '/etc/apt/sources.list.d/docker.list';
export const DOCKER_PACKAGES = ['docker-ce', 'docker-ce-cli', 'containerd.io', 'docker-buildx-plugin', 'docker-compose-plugin'] as const;

export const DOCKER_TLS_DIR = '/etc/docker/tls';
export const TLS_CA = `${DOCKER_TLS_DIR}/ca.pem`;
export const TLS_CERT = `${DOCKER_TLS_DIR}/cert.pem`;
export const TLS_KEY = `${DOCKER_TLS_DIR}/key.pem`;
/** Docker's registered port for the TLS API. */
export const DOCKER_TLS_PORT = 2376;
export const DAEMON_JSON = '/etc/docker/daemon.json';
/** A drop-in, not a sed on the packaged unit: a package upgrade keeps it. */
export const DOCKER_DROP_IN = '/etc/systemd/system/docker.service.d/phoenix.conf';

/** Steps whose change takes a daemon restart to take effect (restart, not reload: dockerd's SIGHUP reload re-reads neither TLS nor listeners). */
export const RESTART_TRIGGERS = ['tls-ca', 'tls-cert', 'tls-key', 'daemon-json', 'systemd-drop-in'] as const;

const CONNTRACK_RULE = 'DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT';

/**
 * dockerd refuses to start when daemon.json names `hosts` and the unit also
 * passes -H (the packaged unit passes -H fd://), so the drop-in clears
 * ExecStart. The conntrack rule for Swarm is re-added after every start, so
 * it survives reboots without netfilter-persistent (which nothing installed).
 */
export const DROP_IN_CONTENT = `# Written by Phoenix (feature_install_docker). The listeners are in
# /etc/docker/daemon.json; dockerd refuses a -H flag as well.
[Service]
ExecStart=
ExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock
ExecStartPost=-/bin/sh -c 'iptables -C ${CONNTRACK_RULE} 2>/dev/null || iptables -I ${CONNTRACK_RULE}'
`;

const HELPERS = `docker_repo_line() {
  ( . /etc/os-release
    printf 'deb [arch=%s signed-by=%s] %s/%s %s stable\\n' "$(dpkg --print-architecture)" ${DOCKER_KEYRING} ${DOCKER_APT_URL} "$ID" "$VERSION_CODENAME" )
}`;

// ---------------------------------------------------------------- pieces shared with the sync scripts

/** The daemon's TLS identity as read (and checked) on the host. */
export interface DockerTls {
  entry: CertificateEntry;
  ca: string;
  cert: string;
  key: string;
}

/**
 * The TLS files for the VM's Docker daemon: the certificate and key at the
 * host paths the certificate manifest names, the root CA from the host copy.
 * Undefined when the manifest has no Docker daemon certificate for the VM.
 */
export async function dockerTls(vmid: string, context: FeatureContext): Promise<DockerTls | undefined> {
  const entry = dockerDaemonCertificate(context, vmid);
  if (!entry) return undefined;
  const hint = 'certificate-renewal-manager.sh issues it (vm-manager create runs it before the features)';
  const cert = readHostFile(onHost(context, entry.cert_path), `the Docker daemon certificate of VM ${vmid}`, hint);
  const key = readHostFile(onHost(context, entry.key_path), `the Docker daemon key of VM ${vmid}`, hint);
  checkPair(cert, key, entry);
  const root = await ensureRootCaOnHost(context);
  return { entry, ca: root.pem, cert, key };
}

/** A key that does not match its certificate would stop dockerd at the restart; refuse it on the host. */
function checkPair(cert: string, key: string, entry: CertificateEntry): void {
  let matches: boolean;
  try {
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new PhoenixError(`the Docker daemon certificate or key for ${entry.common_name} cannot be read: ${(err as Error).message}`, {
      hint: `${entry.cert_path} and ${entry.key_path} must hold a PEM certificate and its PEM private key`,
    });
  }
  if (!matches) throw new PhoenixError(`${entry.key_path} is not the key of ${entry.cert_path}`, { hint: 'renew the certificate (certificate-renewal-manager.sh)' });
}

export function tlsFileSteps(tls: DockerTls): FileStep[] {
  return [
    { kind: 'file', id: 'tls-ca', title: `install the root CA as ${TLS_CA}`, path: TLS_CA, content: tls.ca, mode: 0o644 },
    { kind: 'file', id: 'tls-cert', title: `install the daemon certificate ${tls.entry.common_name} as ${TLS_CERT}`, path: TLS_CERT, content: tls.cert, mode: 0o644 },
    { kind: 'file', id: 'tls-key', title: `install the daemon key as ${TLS_KEY} (0600)`, path: TLS_KEY, content: tls.key, mode: 0o600 },
  ];
}

/** Name servers for containers: the VM's own from the manifest (the bash hard-coded 10.0.0.13). */
export function nameservers(vm: VmConfig): string[] {
  return (vm.network_config?.nameserver ?? '').split(/[\s,]+/).filter(Boolean);
}

/**
 * daemon.json from the manifests. With TLS the TCP endpoint verifies client
 * certificates against the root CA; without, the daemon keeps to its socket.
 */
export function daemonJson(vm: VmConfig, tls: boolean): string {
  const config: Record<string, unknown> = {};
  const dns = nameservers(vm);
  if (dns.length > 0) config.dns = dns;
  config.hosts = tls ? ['unix:///var/run/docker.sock', `tcp://0.0.0.0:${DOCKER_TLS_PORT}`] : ['unix:///var/run/docker.sock'];
  config.iptables = true;
  if (tls) {
    config.tls = true;
    config.tlsverify = true;
    config.tlscacert = TLS_CA;
    config.tlscert = TLS_CERT;
    config.tlskey = TLS_KEY;
  }
  return `${JSON.stringify(config, null, 2)}\n`;
}

export function daemonConfigSteps(vm: VmConfig, tls: boolean): FileStep[] {
  return [
    {
      kind: 'file',
      id: 'daemon-json',
      title: `write ${DAEMON_JSON} (${tls ? `TCP :${DOCKER_TLS_PORT} with client verification` : 'local socket only'})`,
      path: DAEMON_JSON,
      content: daemonJson(vm, tls),
      mode: 0o644,
    },
    { kind: 'file', id: 'systemd-drop-in', title: `write ${DOCKER_DROP_IN}`, path: DOCKER_DROP_IN, content: DROP_IN_CONTENT, mode: 0o644 },
  ];
}

/** Restart dockerd after one of `triggers` changed; `onlyIfRunning` leaves a stopped daemon stopped. */
export function restartStep(triggers: readonly string[], onlyIfRunning: boolean): CommandStep {
  return {
    kind: 'command',
    id: 'docker-restart',
    title: 'restart docker (its TLS files or configuration changed)',
    after: triggers,
    action: onlyIfRunning
      ? 'systemctl daemon-reload\nif systemctl is-active --quiet docker.service; then systemctl restart docker.service; fi'
      : 'systemctl daemon-reload\nsystemctl restart docker.service',
  };
}

export function dockerInstalledRequirement(): Step {
  return {
    kind: 'require',
    id: 'docker-installed',
    title: 'Docker is installed',
    probe: 'command -v dockerd >/dev/null && systemctl cat docker.service >/dev/null',
    message: 'Docker is not installed',
    hint: 'apply the docker feature first (feature_install_docker.sh)',
  };
}

// ---------------------------------------------------------------- the feature

export async function plan(vmid: string, context: FeatureContext): Promise<FeaturePlan> {
  const vm = vmConfig(context, vmid);
  const username = vm.user_config?.username;
  if (!username) throw new ConfigError(context.config.paths.vm, `${vmPointer(context, vmid)}/user_config`, 'the docker feature needs user_config.username (the user put in the docker group)');
  const tls = await dockerTls(vmid, context);
  if (!tls) info(`${FEATURE}: certificate-manifest.json has no Docker daemon certificate for VM ${vmid}; Docker keeps to its local socket`);
  const restartTriggers = RESTART_TRIGGERS.filter((id) => tls !== undefined || !id.startsWith('tls-'));
  const steps: Step[] = [
    {
      kind: 'require',
      id: 'user-exists',
      title: `user ${username} exists`,
      probe: 'id -u "$username" >/dev/null',
      message: `user '${username}' (user_config.username) does not exist`,
      hint: 'cloud-init creates it on first boot; wait for cloud-init to finish',
    },
    {
      kind: 'command',
      id: 'docker-repo',
      title: "add Docker's apt repository",
      probe: `[ -s ${DOCKER_KEYRING} ] && [ "$(cat ${DOCKER_LIST} 2>/dev/null)" = "$(docker_repo_line)" ]`,
      action: `apt_get update
apt_get install --no-install-recommends ca-certificates curl gpg
distro=$( . /etc/os-release; echo "$ID")
curl -fsSL "${DOCKER_APT_URL}/$distro/gpg" | gpg --dearmor --yes -o ${DOCKER_KEYRING}.new
chmod 0644 ${DOCKER_KEYRING}.new
mv -f ${DOCKER_KEYRING}.new ${DOCKER_KEYRING}
docker_repo_line > ${DOCKER_LIST}`,
      timeoutMs: APT_TIMEOUT_MS,
    },
    {
      kind: 'command',
      id: 'docker-packages',
      title: `install ${DOCKER_PACKAGES.join(' ')}`,
      probe: `phoenix_installed ${DOCKER_PACKAGES.join(' ')}`,
      action: `apt_get update\napt_get install ${DOCKER_PACKAGES.join(' ')}`,
      timeoutMs: APT_TIMEOUT_MS,
    },
    ...(tls ? tlsFileSteps(tls) : []),
    ...daemonConfigSteps(vm, tls !== undefined),
    restartStep(restartTriggers, false),
    {
      kind: 'command',
      id: 'docker-service',
      title: 'enable and start docker',
      probe: 'systemctl is-enabled --quiet docker.service && systemctl is-active --quiet docker.service',
      action: 'systemctl enable --now docker.service',
    },
    {
      kind: 'command',
      id: 'docker-group',
      title: `add ${username} to the docker group`,
      probe: 'id -nG "$username" | tr " " "\\n" | grep -qx docker',
      action: 'getent group docker >/dev/null || groupadd --system docker\nusermod -aG docker "$username"',
    },
    {
      kind: 'command',
      id: 'swarm-conntrack',
      // Inserted, not appended: an older DOCKER-USER chain ends in RETURN, and
      // the bash's `-A` put the rule after it, where it never matched.
      title: 'accept RELATED,ESTABLISHED traffic in DOCKER-USER (Swarm)',
      probe: `iptables -C ${CONNTRACK_RULE}`,
      action: `iptables -C ${CONNTRACK_RULE} 2>/dev/null || iptables -I ${CONNTRACK_RULE}`,
    },
  ];
  return { feature: FEATURE, kind: 'vm', guest: vmid, params: [['username', username]], helpers: HELPERS, steps };
}

export async function install(vmid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(vmid, context), context);
}
