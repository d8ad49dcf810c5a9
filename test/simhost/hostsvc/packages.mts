// The host's packages: what `apt-get install` can find (Debian 12's
// versions, as on Proxmox VE 8) and what is installed, kept in
// host-packages.json { installed: { "<package>": "<version>" } }.

import path from 'node:path';

import { atomicWrite, readJson } from '../state.mts';

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
  samba: { version: '2:4.17.12+dfsg-0+deb12u1', units: ['smbd.service', 'nmbd.service'] },
  'nfs-kernel-server': { version: '1:2.6.2-4+deb12u1', units: ['nfs-server.service'] },
  'libguestfs-tools': { version: '1:1.48.6-2' },
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
