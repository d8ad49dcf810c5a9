// The host's packages: what `apt-get install` can find (Debian 12's
// versions, as on Proxmox VE 8) and what is installed, kept in
// host-packages.json { installed: { "<package>": "<version>" } }.

import path from 'node:path';

import { atomicWrite, readJson } from '../state.mts';
import { DEBIAN_SMB_CONF, DEBIAN_SUDOERS, DEBIAN_SUDOERS_README } from './debian-conffiles.mts';

interface PackageSpec {
  version: string;
  /** Units the package ships; Debian's postinst enables and starts them. */
  units?: string[];
  /** Conffiles the package installs when they are absent. */
  files?: Record<string, string>;
  /** Packages it pulls in. */
  depends?: string[];
}

const DEBIAN_DNSMASQ_CONF = `# Configuration file for dnsmasq.
#
# Format is one option per line, legal options are the same
# as the long options legal on the command line. See
# "/usr/sbin/dnsmasq --help" or "man 8 dnsmasq" for details.

#port=5353
#domain-needed
#bogus-priv
#conf-dir=/etc/dnsmasq.d/,*.conf
`;

// nfs-common's /etc/default/nfs-common and the /etc/exports nfs-kernel-server's postinst writes (Debian 12).
const DEBIAN_NFS_COMMON = `# If you do not set values for the NEED_ options, they will be attempted
# autodetected; this should be sufficient for most people. Valid alternatives
# for the NEED_ options are "yes" and "no".

# Do you want to start the statd daemon? It is not needed for NFSv4.
NEED_STATD=

# Options for rpc.statd.
#   Should rpc.statd listen on a specific port? This is especially useful
#   when you have a port-based firewall. To use a fixed port, set this
#   this variable to a statd argument like: "--port 4000 --outgoing-port 4001".
#   For more information, see rpc.statd(8) or http://wiki.debian.org/SecuringNFS
STATDOPTS=

# Do you want to start the idmapd daemon? It is only needed for NFSv4.
NEED_IDMAPD=

# Do you want to start the gssd daemon? It is required for Kerberos mounts.
NEED_GSSD=
`;
const DEBIAN_EXPORTS = `# /etc/exports: the access control list for filesystems which may be exported
#\t\tto NFS clients.  See exports(5).
#
# Example for NFSv2 and NFSv3:
# /srv/homes       hostname1(rw,sync,no_subtree_check) hostname2(ro,sync,no_subtree_check)
#
# Example for NFSv4:
# /srv/nfs4        gss/krb5i(rw,sync,fsid=0,crossmnt,no_subtree_check)
# /srv/nfs4/homes  gss/krb5i(rw,sync,no_subtree_check)
#
`;

/** What `apt-get install` can find. Versions are Debian 12's (Proxmox VE 8). */
export const PACKAGE_CATALOG: Readonly<Record<string, PackageSpec>> = {
  'ca-certificates': { version: '20230311' },
  openssl: { version: '3.0.17-1~deb12u2' },
  curl: { version: '7.88.1-10+deb12u12' },
  jq: { version: '1.6-2.1' },
  lsof: { version: '4.95.0-1' },
  chrony: { version: '4.3-2+deb12u1', units: ['chrony.service'] },
  'dnsmasq-base': { version: '2.90-4~deb12u1' },
  dnsmasq: {
    version: '2.90-4~deb12u1',
    depends: ['dnsmasq-base'],
    units: ['dnsmasq.service'],
    files: { '/etc/dnsmasq.conf': DEBIAN_DNSMASQ_CONF, '/etc/dnsmasq.d/README': '# All files in this directory will be read by dnsmasq as\n# configuration files, except if their names end in\n# ".dpkg-dist",".dpkg-old" or ".dpkg-new"\n' },
  },
  'step-cli': { version: '0.28.2' },
  samba: { version: '2:4.17.12+dfsg-0+deb12u1', units: ['smbd.service', 'nmbd.service'], depends: ['samba-common-bin'] },
  'samba-common': { version: '2:4.17.12+dfsg-0+deb12u1', files: { '/etc/samba/smb.conf': DEBIAN_SMB_CONF } },
  'samba-common-bin': { version: '2:4.17.12+dfsg-0+deb12u1', depends: ['samba-common'] },
  smbclient: { version: '2:4.17.12+dfsg-0+deb12u1', depends: ['samba-common'] },
  sudo: { version: '1.9.13p3-1+deb12u1', files: { '/etc/sudoers': DEBIAN_SUDOERS, '/etc/sudoers.d/README': DEBIAN_SUDOERS_README } },
  'nfs-common': { version: '1:2.6.2-4+deb12u1', files: { '/etc/default/nfs-common': DEBIAN_NFS_COMMON } },
  'nfs-kernel-server': { version: '1:2.6.2-4+deb12u1', depends: ['nfs-common'], units: ['nfs-server.service'], files: { '/etc/exports': DEBIAN_EXPORTS } },
  'libguestfs-tools': { version: '1:1.48.6-2' },
  's-tui': { version: '1.1.4-2' },
  yq: { version: '3.1.0-3' },
  // what the NVIDIA runfile needs to build its module (PVE 8 kernel 6.8.12-4-pve)
  'build-essential': { version: '12.9' },
  dkms: { version: '3.0.10-8+deb12u1' },
  'pkg-config': { version: '1.8.1-1' },
  'proxmox-headers-6.8.12-4-pve': { version: '6.8.12-4' },
  nvtop: { version: '3.0.1-1' },
  apparmor: { version: '3.0.8-3' },
  'apparmor-utils': { version: '3.0.8-3', depends: ['apparmor'] },
};

/** Installed on a fresh simulated node. */
const BASE_PACKAGES = ['ca-certificates', 'openssl', 'curl', 'jq', 'chrony'];

export interface PackageState {
  installed: Record<string, string>;
}

function packagesFile(root: string): string {
  return path.join(root, 'host-packages.json');
}

export function loadPackages(root: string): PackageState {
  const state = readJson<PackageState | null>(packagesFile(root), null);
  if (state) return state;
  return { installed: Object.fromEntries(BASE_PACKAGES.map((name) => [name, PACKAGE_CATALOG[name]!.version])) };
}

export function savePackages(root: string, state: PackageState): void {
  atomicWrite(packagesFile(root), `${JSON.stringify(state, null, 2)}\n`);
}

export function packageInstalled(root: string, name: string): boolean {
  return Object.hasOwn(loadPackages(root).installed, name);
}
