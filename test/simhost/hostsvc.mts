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
import type { HostToolContext } from './hostsvc/context.mts';

export { hostRootOf, onHostRoot, type HostToolContext } from './hostsvc/context.mts';
export { checkDnsmasqConfig, type DnsmasqCheck } from './hostsvc/dnsmasq.mts';
export { loadPackages, PACKAGE_CATALOG, packageInstalled } from './hostsvc/packages.mts';
export { loadServices, unitName, type ServiceState, type UnitState } from './hostsvc/units.mts';

type HostToolRun = (ctx: HostToolContext) => void | Promise<void>;

/**
 * Each tool and the module that answers it, loaded on first use so a call
 * reads only its own module. A module of hostsvc/ exports one run function
 * per tool it answers.
 */
const TOOL_MODULES: Record<string, () => Promise<HostToolRun>> = {
  systemctl: async () => (await import('./hostsvc/systemctl.mts')).runSystemctl,
  'apt-get': async () => (await import('./hostsvc/apt.mts')).runAptGet,
  'dpkg-query': async () => (await import('./hostsvc/apt.mts')).runDpkgQuery,
  'update-ca-certificates': async () => (await import('./hostsvc/update-ca-certificates.mts')).runUpdateCaCertificates,
  dnsmasq: async () => (await import('./hostsvc/dnsmasq.mts')).runDnsmasq,
};

export const HOST_TOOLS = Object.keys(TOOL_MODULES);

/** Register the tools of one hostsvc module (called by hostsvc/tools.mts, the list of setup tools). */
export function registerHostTools(tools: Record<string, () => Promise<HostToolRun>>): void {
  for (const [name, load] of Object.entries(tools)) {
    TOOL_MODULES[name] = load;
    if (!HOST_TOOLS.includes(name)) HOST_TOOLS.push(name);
  }
}

export async function runHostTool(ctx: HostToolContext): Promise<void> {
  const load = TOOL_MODULES[ctx.tool];
  if (load === undefined) throw new ToolExit(2, `simhost: unknown host tool '${ctx.tool}'\n`);
  await (await load())(ctx);
}
