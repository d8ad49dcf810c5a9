// The simulated host's own services and packages: `systemctl`, `apt-get`,
// `dpkg-query`, `update-ca-certificates` and `dnsmasq`, as a Debian/Proxmox
// host answers them. Proxmox's tools act on guests; these act on the host
// itself, so their files live under the host root (PHOENIX_HOST_ROOT,
// default <state>/hostfs) and their state in two files next to the rest:
//
//   host-services.json  { units: { "<name>.<type>": UnitState }, loaded: { unit: sha256 } }
//   host-packages.json  { installed: { "<package>": "<version>" } }
//
// Units come from three places, like on a real host: the services a fresh
// Proxmox VE node runs (built in), the units a simulated package brings
// (dnsmasq), and unit files under <host root>/{etc,lib,usr/lib}/systemd/system
// (loaded on first use; a changed file needs `daemon-reload`, with systemd's
// warning otherwise). Exit codes are systemd's: is-active 3 when not active,
// is-enabled 1 when not enabled, status 3 (inactive) or 4 (no such unit),
// 5 for start/stop/restart of a unit that does not exist.
//
// Each tool is a module in hostsvc/; this one routes a call to it.

import { ToolExit } from './state.mts';
import { runAptGet, runDpkgQuery } from './hostsvc/apt.mts';
import type { HostToolContext } from './hostsvc/context.mts';
import { runDnsmasq } from './hostsvc/dnsmasq.mts';
import { runSystemctl } from './hostsvc/systemctl.mts';
import { runUpdateCaCertificates } from './hostsvc/update-ca-certificates.mts';

export { hostRootOf, onHostRoot, type HostToolContext } from './hostsvc/context.mts';
export { checkDnsmasqConfig, type DnsmasqCheck } from './hostsvc/dnsmasq.mts';
export { loadPackages, PACKAGE_CATALOG, packageInstalled } from './hostsvc/packages.mts';
export { loadServices, unitName, type ServiceState, type UnitState } from './hostsvc/units.mts';

export const HOST_TOOLS = ['systemctl', 'apt-get', 'dpkg-query', 'update-ca-certificates', 'dnsmasq'] as const;
export type HostTool = (typeof HOST_TOOLS)[number];

export function runHostTool(ctx: HostToolContext): void {
  switch (ctx.tool as HostTool) {
    case 'systemctl':
      return runSystemctl(ctx);
    case 'apt-get':
      return runAptGet(ctx);
    case 'dpkg-query':
      return runDpkgQuery(ctx);
    case 'update-ca-certificates':
      return runUpdateCaCertificates(ctx);
    case 'dnsmasq':
      return runDnsmasq(ctx);
    default:
      throw new ToolExit(2, `simhost: unknown host tool '${ctx.tool}'\n`);
  }
}
