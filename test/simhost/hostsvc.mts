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

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { readJson, ToolExit, withStateLock, atomicWrite } from './state.mts';

// ---------------------------------------------------------------- shared

export interface HostToolContext {
  tool: string;
  argv: string[];
  /** The simulator's state directory. */
  root: string;
  /** Where the host's own files are (PHOENIX_HOST_ROOT, default <state>/hostfs). */
  hostRoot: string;
  out(text: string): void;
  err(text: string): void;
}

export function hostRootOf(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.PHOENIX_HOST_ROOT || path.join(root, 'hostfs'));
}

/** A host path (as the tools and configs name it) inside the simulated host's tree. */
export function onHostRoot(hostRoot: string, hostPath: string): string {
  return path.join(hostRoot, path.posix.resolve('/', hostPath));
}

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

// ---------------------------------------------------------------- packages

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

interface PackageState {
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

function savePackages(root: string, state: PackageState): void {
  atomicWrite(packagesFile(root), `${JSON.stringify(state, null, 2)}\n`);
}

export function packageInstalled(root: string, name: string): boolean {
  return Object.hasOwn(loadPackages(root).installed, name);
}

function runAptGet(ctx: HostToolContext): void {
  const words = ctx.argv.filter((a) => !a.startsWith('-'));
  const flags = ctx.argv.filter((a) => a.startsWith('-'));
  const assumeYes = flags.some((f) => f === '-y' || f === '--yes' || f === '--assume-yes' || /^-[a-z]*y/.test(f));
  const quiet = flags.some((f) => f.startsWith('-q'));
  const [verb, ...names] = words;
  switch (verb) {
    case undefined:
      throw new ToolExit(1, 'E: Invalid operation \n');
    case 'update':
      if (!quiet) ctx.out('Hit:1 http://deb.debian.org/debian bookworm InRelease\nHit:2 http://download.proxmox.com/debian/pve bookworm InRelease\nReading package lists...\n');
      return;
    case 'install': {
      if (names.length === 0) {
        ctx.out('Reading package lists...\nBuilding dependency tree...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n');
        return;
      }
      for (const name of names) if (!PACKAGE_CATALOG[name]) throw new ToolExit(100, `Reading package lists...\nE: Unable to locate package ${name}\n`);
      withStateLock(ctx.root, () => {
        const state = loadPackages(ctx.root);
        const wanted: string[] = [];
        const add = (name: string) => {
          if (wanted.includes(name) || Object.hasOwn(state.installed, name)) return;
          for (const dep of PACKAGE_CATALOG[name]!.depends ?? []) add(dep);
          wanted.push(name);
        };
        for (const name of names) add(name);
        if (!quiet) ctx.out('Reading package lists...\nBuilding dependency tree...\nReading state information...\n');
        for (const name of names) {
          if (Object.hasOwn(state.installed, name) && !quiet) ctx.out(`${name} is already the newest version (${state.installed[name]}).\n`);
        }
        if (wanted.length === 0) {
          if (!quiet) ctx.out('0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n');
          return;
        }
        if (!assumeYes) {
          ctx.out(`The following NEW packages will be installed:\n  ${wanted.join(' ')}\nDo you want to continue? [Y/n] Abort.\n`);
          throw new ToolExit(1, '');
        }
        if (!quiet) ctx.out(`The following NEW packages will be installed:\n  ${wanted.join(' ')}\n0 upgraded, ${wanted.length} newly installed, 0 to remove and 0 not upgraded.\n`);
        const services = loadServices(ctx.root);
        for (const name of wanted) {
          const spec = PACKAGE_CATALOG[name]!;
          state.installed[name] = spec.version;
          for (const [file, content] of Object.entries(spec.files ?? {})) {
            const target = onHostRoot(ctx.hostRoot, file);
            if (!fs.existsSync(target)) {
              fs.mkdirSync(path.dirname(target), { recursive: true });
              fs.writeFileSync(target, content, { mode: 0o644 });
            }
          }
          for (const unit of spec.units ?? []) {
            services.units[unit] = { active: 'active', enabled: 'enabled', vendor: true, starts: 1, since: new Date().toISOString() };
          }
          if (!quiet) ctx.out(`Setting up ${name} (${spec.version}) ...\n`);
        }
        savePackages(ctx.root, state);
        saveServices(ctx.root, services);
      });
      return;
    }
    default:
      throw new ToolExit(100, `E: simhost: apt-get ${verb} is not simulated\n`);
  }
}

function runDpkgQuery(ctx: HostToolContext): void {
  let format: string | undefined;
  let mode: 'W' | 's' | undefined;
  const names: string[] = [];
  for (let i = 0; i < ctx.argv.length; i++) {
    const arg = ctx.argv[i]!;
    if (arg === '-W' || arg === '--show') mode = 'W';
    else if (arg === '-s' || arg === '--status') mode = 's';
    else if (arg === '-f' || arg === '--showformat') format = ctx.argv[++i];
    else if (arg.startsWith('--showformat=')) format = arg.slice('--showformat='.length);
    else if (arg.startsWith('-f') && arg.length > 2) format = arg.slice(2);
    else if (arg.startsWith('-')) throw new ToolExit(2, `dpkg-query: error: unknown option ${arg}\n\nUse --help for help about querying packages.\n`);
    else names.push(arg);
  }
  if (!mode) throw new ToolExit(2, 'dpkg-query: error: need an action option\n\nUse --help for help about querying packages.\n');
  const installed = loadPackages(ctx.root).installed;
  let missing = false;
  for (const name of names) {
    const version = installed[name];
    if (version === undefined) {
      missing = true;
      ctx.err(mode === 's' ? `dpkg-query: package '${name}' is not installed and no information is available\n` : `dpkg-query: no packages found matching ${name}\n`);
      continue;
    }
    if (mode === 's') {
      ctx.out(`Package: ${name}\nStatus: install ok installed\nVersion: ${version}\n\n`);
      continue;
    }
    const fmt = (format ?? '${binary:Package}\\t${Version}\\n').replace(/\\n/g, '\n').replace(/\\t/g, '\t');
    ctx.out(
      fmt.replace(/\$\{([^}]+)\}/g, (_m, field: string) => {
        switch (field) {
          case 'Package':
          case 'binary:Package':
            return name;
          case 'Version':
            return version;
          case 'Status':
            return 'install ok installed';
          case 'db:Status-Abbrev':
            return 'ii ';
          default:
            return '';
        }
      }),
    );
  }
  if (missing) throw new ToolExit(1, '');
}

// ---------------------------------------------------------------- systemctl

export interface UnitState {
  active: 'active' | 'inactive' | 'failed';
  enabled: 'enabled' | 'disabled' | 'static';
  /** Shipped by the node or a package (no unit file in the host tree). */
  vendor?: boolean;
  starts: number;
  reloads?: number;
  since?: string;
}

export interface ServiceState {
  units: Record<string, UnitState>;
  /** Unit files systemd has loaded, with the sha256 it loaded. */
  loaded: Record<string, string>;
}

/** What a fresh Proxmox VE 8 node runs. */
const NODE_UNITS = [
  'pve-cluster.service',
  'pvedaemon.service',
  'pveproxy.service',
  'pvestatd.service',
  'pvescheduler.service',
  'pve-firewall.service',
  'networking.service',
  'ssh.service',
  'cron.service',
  'chrony.service',
  'rpcbind.service',
];

/** Units with an ExecReload=. */
const RELOADABLE = new Set(['dnsmasq.service', 'ssh.service', 'pveproxy.service', 'pvedaemon.service', 'networking.service', 'chrony.service', 'smbd.service', 'nmbd.service', 'nfs-server.service', 'pve-firewall.service']);

const UNIT_DIRS = ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];
const UNIT_TYPES = ['service', 'timer', 'socket', 'target', 'path', 'mount'];

function servicesFile(root: string): string {
  return path.join(root, 'host-services.json');
}

export function loadServices(root: string): ServiceState {
  const state = readJson<ServiceState | null>(servicesFile(root), null);
  if (state) return { units: state.units ?? {}, loaded: state.loaded ?? {} };
  const units: Record<string, UnitState> = {};
  for (const unit of NODE_UNITS) units[unit] = { active: 'active', enabled: 'enabled', vendor: true, starts: 1 };
  return { units, loaded: {} };
}

function saveServices(root: string, state: ServiceState): void {
  atomicWrite(servicesFile(root), `${JSON.stringify(state, null, 2)}\n`);
}

/** `foo` → `foo.service`, as systemctl completes a name without a type. */
export function unitName(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot > 0 && UNIT_TYPES.includes(name.slice(dot + 1))) return name;
  return `${name}.service`;
}

function unitFile(hostRoot: string, unit: string): { hostPath: string; file: string } | undefined {
  for (const dir of UNIT_DIRS) {
    const hostPath = `${dir}/${unit}`;
    const file = onHostRoot(hostRoot, hostPath);
    if (fs.existsSync(file)) return { hostPath, file };
  }
  return undefined;
}

function sha256(text: string | Buffer): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

interface ResolvedUnit {
  name: string;
  state: UnitState;
  /** The unit file in the host tree, for file units. */
  file?: { hostPath: string; file: string };
  /** The file changed on disk since systemd loaded it (NeedDaemonReload). */
  stale?: boolean;
}

/**
 * Find a unit. A unit file systemd has not seen yet is loaded on first use
 * (as systemd does); one that changed since it was loaded works with a
 * warning until `daemon-reload`.
 */
function resolveUnit(ctx: HostToolContext, services: ServiceState, name: string): ResolvedUnit | undefined {
  const unit = unitName(name);
  const file = unitFile(ctx.hostRoot, unit);
  const known = services.units[unit];
  if (file) {
    const hash = sha256(fs.readFileSync(file.file));
    if (services.loaded[unit] === undefined) services.loaded[unit] = hash;
    const stale = services.loaded[unit] !== hash;
    const state = known ?? { active: 'inactive', enabled: hasInstallSection(file.file) ? 'disabled' : 'static', starts: 0 };
    services.units[unit] = state;
    return { name: unit, state, file, stale };
  }
  if (known?.vendor) return { name: unit, state: known };
  return undefined;
}

function hasInstallSection(file: string): boolean {
  return /^\s*\[Install\]\s*$/m.test(fs.readFileSync(file, 'utf8'));
}

function wantedBy(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const install = text.split(/^\s*\[Install\]\s*$/m)[1]?.split(/^\s*\[/m)[0] ?? '';
  return [...install.matchAll(/^\s*(?:WantedBy|RequiredBy)\s*=\s*(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
}

/** A unit-specific check run before a start; a failed check leaves the unit failed. */
const START_CHECKS: Record<string, (ctx: HostToolContext) => string | undefined> = {
  'dnsmasq.service': (ctx) => {
    const main = onHostRoot(ctx.hostRoot, '/etc/dnsmasq.conf');
    if (!fs.existsSync(main)) return undefined;
    const result = checkDnsmasqConfig(main, ctx.hostRoot, '/etc/dnsmasq.conf');
    return result.ok ? undefined : result.message;
  },
};

const SYSTEMCTL_VERBS = [
  'start', 'stop', 'restart', 'reload', 'try-restart', 'reload-or-restart', 'try-reload-or-restart',
  'enable', 'disable', 'is-active', 'is-enabled', 'is-failed', 'status', 'show', 'daemon-reload', 'reset-failed',
];

function runSystemctl(ctx: HostToolContext): void {
  let quiet = false;
  let now = false;
  let value = false;
  const properties: string[] = [];
  const words: string[] = [];
  for (let i = 0; i < ctx.argv.length; i++) {
    const arg = ctx.argv[i]!;
    if (arg === '-q' || arg === '--quiet') quiet = true;
    else if (arg === '--now') now = true;
    else if (arg === '--value') value = true;
    else if (arg === '-p' || arg === '--property') properties.push(...(ctx.argv[++i] ?? '').split(','));
    else if (arg.startsWith('--property=')) properties.push(...arg.slice(11).split(','));
    else if (['--no-pager', '--no-block', '--system', '--full', '-l', '--plain', '--no-legend', '--no-ask-password'].includes(arg)) continue;
    else if (arg.startsWith('-')) throw new ToolExit(1, `systemctl: unrecognized option '${arg}'\n`);
    else words.push(arg);
  }
  const [verb, ...names] = words;
  if (verb === undefined) throw new ToolExit(1, 'simhost: systemctl without a verb (list-units) is not simulated\n');
  if (!SYSTEMCTL_VERBS.includes(verb)) throw new ToolExit(1, `Unknown command verb '${verb}'.\n`);
  if (verb === 'daemon-reload') {
    withStateLock(ctx.root, () => {
      const services = loadServices(ctx.root);
      for (const unit of Object.keys(services.loaded)) {
        const file = unitFile(ctx.hostRoot, unit);
        if (file) services.loaded[unit] = sha256(fs.readFileSync(file.file));
        else {
          delete services.loaded[unit];
          if (!services.units[unit]?.vendor) delete services.units[unit];
        }
      }
      saveServices(ctx.root, services);
    });
    return;
  }
  if (names.length === 0) throw new ToolExit(1, `Too few arguments.\n`);

  let exit = 0;
  withStateLock(ctx.root, () => {
    const services = loadServices(ctx.root);
    try {
      names.forEach((name, i) => {
        // systemctl show separates the units it shows with an empty line.
        if (verb === 'show' && i > 0) ctx.out('\n');
        exit = Math.max(exit, systemctlOne(ctx, services, verb, name, { quiet, now, value, properties }));
      });
    } finally {
      saveServices(ctx.root, services);
    }
  });
  if (exit !== 0) throw new ToolExit(exit, '');
}

interface SystemctlFlags {
  quiet: boolean;
  now: boolean;
  value: boolean;
  properties: string[];
}

function systemctlOne(ctx: HostToolContext, services: ServiceState, verb: string, name: string, flags: SystemctlFlags): number {
  const unit = resolveUnit(ctx, services, name);
  const full = unitName(name);
  if (unit?.stale && /^(start|stop|restart|reload|reload-or-restart|try-restart|try-reload-or-restart|status)$/.test(verb)) {
    ctx.err(`Warning: The unit file, source configuration file or drop-ins of ${unit.name} changed on disk. Run 'systemctl daemon-reload' to reload units.\n`);
  }
  const say = (text: string) => {
    if (!flags.quiet) ctx.out(text);
  };
  switch (verb) {
    case 'is-active': {
      const state = unit?.state.active ?? 'inactive';
      say(`${state}\n`);
      return state === 'active' ? 0 : 3;
    }
    case 'is-failed': {
      const state = unit?.state.active ?? 'inactive';
      say(`${state}\n`);
      return state === 'failed' ? 0 : 1;
    }
    case 'is-enabled': {
      if (!unit) {
        if (!flags.quiet) ctx.err(`Failed to get unit file state for ${full}: No such file or directory\n`);
        return 1;
      }
      say(`${unit.state.enabled}\n`);
      return unit.state.enabled === 'enabled' || unit.state.enabled === 'static' ? 0 : 1;
    }
    case 'status': {
      if (!unit) {
        ctx.err(`Unit ${full} could not be found.\n`);
        return 4;
      }
      const where = unit.file?.hostPath ?? `/lib/systemd/system/${unit.name}`;
      const active = unit.state.active === 'active' ? `active (${unit.name.endsWith('.timer') ? 'waiting' : 'running'})` : unit.state.active;
      ctx.out(`● ${unit.name}\n     Loaded: loaded (${where}; ${unit.state.enabled}; preset: enabled)\n     Active: ${active}${unit.state.since ? ` since ${unit.state.since}` : ''}\n`);
      return unit.state.active === 'active' ? 0 : 3;
    }
    case 'show': {
      const props: Record<string, string> = {
        Id: full,
        LoadState: unit ? 'loaded' : 'not-found',
        ActiveState: unit?.state.active ?? 'inactive',
        SubState: unit?.state.active === 'active' ? (full.endsWith('.timer') ? 'waiting' : 'running') : 'dead',
        UnitFileState: unit?.state.enabled ?? '',
        NRestarts: String(Math.max(0, (unit?.state.starts ?? 0) - 1)),
        FragmentPath: unit ? (unit.file?.hostPath ?? `/lib/systemd/system/${full}`) : '',
        NeedDaemonReload: unit?.stale ? 'yes' : 'no',
      };
      const wanted = flags.properties.length > 0 ? flags.properties : Object.keys(props);
      for (const key of wanted) ctx.out(flags.value ? `${props[key] ?? ''}\n` : `${key}=${props[key] ?? ''}\n`);
      return 0;
    }
    case 'reset-failed':
      if (unit && unit.state.active === 'failed') unit.state.active = 'inactive';
      return 0;
  }

  const action = verb === 'enable' || verb === 'disable' ? verb : verb.replace(/^try-/, '');
  if (!unit) {
    if (verb === 'enable' || verb === 'disable') {
      ctx.err(`Failed to ${verb} unit: Unit file ${full} does not exist.\n`);
      return 1;
    }
    ctx.err(`Failed to ${action.replace('reload-or-restart', 'reload or restart')} ${full}: Unit ${full} not found.\n`);
    return 5;
  }
  const state = unit.state;
  switch (verb) {
    case 'enable':
    case 'disable': {
      let code = 0;
      if (state.enabled === 'static' && unit.file) {
        ctx.err(`The unit files have no installation config (WantedBy=, RequiredBy=, UpheldBy=,\nAlso=, or Alias= settings in the [Install] section, and DefaultInstance= for\ntemplate units). This means they are not meant to be enabled or disabled using systemctl.\n`);
      } else if (verb === 'enable' && state.enabled !== 'enabled') {
        for (const target of unit.file ? wantedBy(unit.file.file) : ['multi-user.target']) {
          const link = `/etc/systemd/system/${target}.wants/${unit.name}`;
          const source = unit.file?.hostPath ?? `/lib/systemd/system/${unit.name}`;
          if (unit.file) {
            const onDisk = onHostRoot(ctx.hostRoot, link);
            fs.mkdirSync(path.dirname(onDisk), { recursive: true });
            fs.rmSync(onDisk, { force: true });
            fs.symlinkSync(source, onDisk);
          }
          ctx.err(`Created symlink ${link} → ${source}.\n`);
        }
        state.enabled = 'enabled';
      } else if (verb === 'disable' && state.enabled === 'enabled') {
        for (const target of unit.file ? wantedBy(unit.file.file) : ['multi-user.target']) {
          const link = `/etc/systemd/system/${target}.wants/${unit.name}`;
          if (unit.file) fs.rmSync(onHostRoot(ctx.hostRoot, link), { force: true });
          ctx.err(`Removed "${link}".\n`);
        }
        state.enabled = 'disabled';
      }
      if (flags.now) code = verb === 'enable' ? start(ctx, unit, false) : stop(unit);
      return code;
    }
    case 'start':
      return state.active === 'active' ? 0 : start(ctx, unit, false);
    case 'stop':
      return stop(unit);
    case 'restart':
      return start(ctx, unit, true);
    case 'try-restart':
      return state.active === 'active' ? start(ctx, unit, true) : 0;
    case 'reload':
      if (!RELOADABLE.has(unit.name)) {
        ctx.err(`Failed to reload ${unit.name}: Job type reload is not applicable for unit ${unit.name}.\n`);
        return 1;
      }
      if (state.active !== 'active') {
        ctx.err(`${unit.name} is not active, cannot reload.\n`);
        return 1;
      }
      state.reloads = (state.reloads ?? 0) + 1;
      return 0;
    case 'reload-or-restart':
    case 'try-reload-or-restart':
      if (verb === 'try-reload-or-restart' && state.active !== 'active') return 0;
      if (state.active === 'active' && RELOADABLE.has(unit.name)) {
        state.reloads = (state.reloads ?? 0) + 1;
        return 0;
      }
      return start(ctx, unit, true);
  }
  return 0;
}

function start(ctx: HostToolContext, unit: ResolvedUnit, restart: boolean): number {
  const problem = START_CHECKS[unit.name]?.(ctx);
  if (problem) {
    unit.state.active = 'failed';
    ctx.err(
      `Job for ${unit.name} failed because the control process exited with error code.\nSee "systemctl status ${unit.name}" and "journalctl -xeu ${unit.name}" for details.\n`,
    );
    return 1;
  }
  if (unit.state.active !== 'active' || restart) {
    unit.state.starts += 1;
    unit.state.since = new Date().toISOString();
  }
  unit.state.active = 'active';
  return 0;
}

function stop(unit: ResolvedUnit): number {
  unit.state.active = 'inactive';
  delete unit.state.since;
  return 0;
}

// ---------------------------------------------------------------- update-ca-certificates

const LOCAL_CA_DIR = '/usr/local/share/ca-certificates';
const CERTS_DIR = '/etc/ssl/certs';
const BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

function listCrtFiles(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listCrtFiles(full));
    else if (entry.name.endsWith('.crt')) out.push(full);
  }
  return out.sort();
}

/**
 * Debian's update-ca-certificates for the local certificates: each
 * <host root>/usr/local/share/ca-certificates/**.crt holding exactly one
 * certificate is linked as /etc/ssl/certs/<name>.pem, links whose source is
 * gone are removed, and the bundle ca-certificates.crt is rebuilt. The
 * counts it prints are those links.
 */
function runUpdateCaCertificates(ctx: HostToolContext): void {
  const fresh = ctx.argv.includes('--fresh') || ctx.argv.includes('-f');
  for (const arg of ctx.argv) {
    if (!['--fresh', '-f', '--verbose', '-v'].includes(arg)) throw new ToolExit(1, `update-ca-certificates: unknown option ${arg}\n`);
  }
  if (!packageInstalled(ctx.root, 'ca-certificates')) throw new ToolExit(127, 'update-ca-certificates: command not found\n');
  const localDir = onHostRoot(ctx.hostRoot, LOCAL_CA_DIR);
  const certsDir = onHostRoot(ctx.hostRoot, CERTS_DIR);
  fs.mkdirSync(certsDir, { recursive: true });
  ctx.out(`Updating certificates in ${CERTS_DIR}...\n`);

  let removed = 0;
  for (const name of fs.readdirSync(certsDir)) {
    const link = path.join(certsDir, name);
    let target: string;
    try {
      target = fs.readlinkSync(link);
    } catch {
      continue; // not a link: the bundle
    }
    if (!target.startsWith(`${LOCAL_CA_DIR}/`)) continue;
    if (fresh || !fs.existsSync(onHostRoot(ctx.hostRoot, target))) {
      fs.rmSync(link);
      if (!fresh) removed++;
    }
  }

  let added = 0;
  const bundle: string[] = [];
  for (const file of listCrtFiles(localDir)) {
    const hostPath = `${LOCAL_CA_DIR}/${path.relative(localDir, file).split(path.sep).join('/')}`;
    const pem = fs.readFileSync(file, 'utf8');
    const count = (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
    if (count !== 1 || !/-----END CERTIFICATE-----/.test(pem)) {
      ctx.err(`WARNING: ${hostPath} does not contain exactly one certificate or CRL: skipping\n`);
      continue;
    }
    const link = path.join(certsDir, `${path.basename(file, '.crt')}.pem`);
    let current: string | undefined;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = undefined;
    }
    if (current !== hostPath) {
      fs.rmSync(link, { force: true });
      fs.symlinkSync(hostPath, link);
      added++;
    }
    bundle.push(pem.endsWith('\n') ? pem : `${pem}\n`);
  }
  atomicWrite(onHostRoot(ctx.hostRoot, BUNDLE), bundle.join(''), 0o644);
  ctx.out(`${added} added, ${removed} removed; done.\nRunning hooks in /etc/ca-certificates/update.d...\ndone.\n`);
}

// ---------------------------------------------------------------- dnsmasq

/** Options without a value. */
const DNSMASQ_FLAGS = new Set([
  'domain-needed', 'bogus-priv', 'strict-order', 'all-servers', 'stop-dns-rebind', 'rebind-localhost-ok', 'no-resolv',
  'no-poll', 'no-hosts', 'expand-hosts', 'bind-interfaces', 'bind-dynamic', 'localise-queries', 'log-queries',
  'no-negcache', 'filterwin2k', 'keep-in-foreground', 'no-daemon', 'dnssec', 'dnssec-check-unsigned', 'no-ping',
  'read-ethers', 'dhcp-authoritative', 'log-dhcp', 'quiet-dhcp', 'enable-ra', 'clear-on-reload', 'domain-needed',
]);

/** Options with a value, and how the value is checked ('' when anything goes). */
type ValueCheck = (value: string) => string | undefined;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:]+:[0-9a-fA-F:.]*$/;
const isIp = (v: string) => IPV4.test(v) || IPV6.test(v);
const DOMAIN = /^[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/** `/dom1/dom2/` followed by the rest, or undefined when the value has no domain part. */
function domainPart(value: string): { domains: string[]; rest: string } | undefined {
  if (!value.startsWith('/')) return undefined;
  const end = value.lastIndexOf('/');
  if (end === 0) return { domains: [], rest: value.slice(1) };
  return { domains: value.slice(1, end).split('/').filter((d) => d !== ''), rest: value.slice(end + 1) };
}

function checkServer(value: string): string | undefined {
  const parts = domainPart(value);
  if (parts && parts.domains.some((d) => d !== '#' && !DOMAIN.test(d))) return 'bad domain';
  const target = (parts ? parts.rest : value).split('@')[0]!.split('#')[0]!;
  if (target === '' || target === '#') return parts ? undefined : 'Name or service not known';
  return isIp(target) ? undefined : 'Name or service not known';
}

const DNSMASQ_VALUES: Record<string, ValueCheck> = {
  port: (v) => (/^\d+$/.test(v) && Number(v) <= 65535 ? undefined : 'error'),
  'cache-size': (v) => (/^\d+$/.test(v) ? undefined : 'error'),
  'local-ttl': (v) => (/^\d+$/.test(v) ? undefined : 'error'),
  'listen-address': (v) => (v.split(',').every((a) => isIp(a.trim())) ? undefined : 'error'),
  server: checkServer,
  local: checkServer,
  address: (v) => {
    const parts = domainPart(v);
    if (!parts || parts.domains.length === 0) return 'error';
    if (parts.domains.some((d) => !DOMAIN.test(d))) return 'bad domain';
    return parts.rest === '' || parts.rest === '#' || isIp(parts.rest) ? undefined : 'error';
  },
  'host-record': (v) => {
    const fields = v.split(',').map((f) => f.trim());
    const addresses = fields.filter(isIp);
    if (addresses.length === 0) return 'bad address';
    for (const field of fields) {
      if (isIp(field) || /^\d+$/.test(field)) continue;
      if (!DOMAIN.test(field)) return 'bad name';
    }
    return undefined;
  },
  'rebind-domain-ok': (v) => (domainPart(v) ? undefined : 'error'),
  domain: (v) => (DOMAIN.test(v.split(',')[0]!) ? undefined : 'bad domain'),
  interface: () => undefined,
  'except-interface': () => undefined,
  'no-dhcp-interface': () => undefined,
  'conf-dir': () => undefined,
  'conf-file': () => undefined,
  'addn-hosts': () => undefined,
  'resolv-file': () => undefined,
  'pid-file': () => undefined,
  user: () => undefined,
  group: () => undefined,
  'log-facility': () => undefined,
  'cname': (v) => (v.split(',').length >= 2 ? undefined : 'bad CNAME'),
};

export interface DnsmasqCheck {
  ok: boolean;
  /** dnsmasq's complaint, without the `dnsmasq: ` prefix. */
  message?: string;
  /** 1 for a bad option, 3 for a file it cannot read (dnsmasq's exit codes). */
  exit: number;
}

/**
 * Parse a dnsmasq configuration file the way `dnsmasq --test` does, for the
 * directive forms Phoenix and Debian use. Includes (conf-file, conf-dir)
 * name host paths and are read under the host root.
 */
export function checkDnsmasqConfig(file: string, hostRoot: string, shownAs = file, depth = 0): DnsmasqCheck {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    return { ok: false, exit: 3, message: `cannot read ${shownAs}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : 'Permission denied'}` };
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = ` at line ${i + 1} of ${shownAs}`;
    const eq = line.indexOf('=');
    const name = (eq === -1 ? line : line.slice(0, eq)).trim();
    const value = eq === -1 ? undefined : line.slice(eq + 1).trim();
    if (DNSMASQ_FLAGS.has(name)) {
      if (value !== undefined) return { ok: false, exit: 1, message: `extraneous parameter${at}` };
      continue;
    }
    const check = DNSMASQ_VALUES[name];
    if (!check) return { ok: false, exit: 1, message: `bad option${at}` };
    if (value === undefined || value === '') return { ok: false, exit: 1, message: `missing parameter${at}` };
    const problem = check(value);
    if (problem) return { ok: false, exit: 1, message: `${problem}${at}` };
    if (depth < 4 && (name === 'conf-file' || name === 'conf-dir')) {
      const [target = '', ...filters] = value.split(',');
      const included = name === 'conf-file' ? [target] : dirConfFiles(onHostRoot(hostRoot, target), filters).map((f) => `${target.replace(/\/+$/, '')}/${f}`);
      for (const hostPath of included) {
        const result = checkDnsmasqConfig(onHostRoot(hostRoot, hostPath), hostRoot, hostPath, depth + 1);
        if (!result.ok) return result;
      }
    }
  }
  return { ok: true, exit: 0 };
}

/** conf-dir's selection: `*.conf` keeps only matching names; other entries are suffixes to skip. */
function dirConfFiles(dir: string, filters: string[]): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isFile()).sort();
  } catch {
    return [];
  }
  const keep = filters.filter((f) => f.startsWith('*')).map((f) => f.slice(1));
  const skip = filters.filter((f) => !f.startsWith('*'));
  return names.filter((n) => !n.startsWith('.') && !n.endsWith('~') && (keep.length === 0 || keep.some((s) => n.endsWith(s))) && !skip.some((s) => n.endsWith(s)));
}

function runDnsmasq(ctx: HostToolContext): void {
  if (!packageInstalled(ctx.root, 'dnsmasq-base')) throw new ToolExit(127, 'dnsmasq: command not found\n');
  let test = false;
  let confFile = '/etc/dnsmasq.conf';
  let confGiven = false;
  for (let i = 0; i < ctx.argv.length; i++) {
    const arg = ctx.argv[i]!;
    if (arg === '--test') test = true;
    else if (arg === '-v' || arg === '--version') {
      ctx.out(`Dnsmasq version ${PACKAGE_CATALOG['dnsmasq-base']!.version.split('-')[0]}  Copyright (c) 2000-2024 Simon Kelley\n`);
      return;
    } else if (arg === '-C' || arg === '--conf-file') {
      confFile = ctx.argv[++i] ?? '';
      confGiven = true;
    } else if (arg.startsWith('--conf-file=')) {
      confFile = arg.slice('--conf-file='.length);
      confGiven = true;
    } else if (arg.startsWith('-C') && arg.length > 2) {
      confFile = arg.slice(2);
      confGiven = true;
    } else throw new ToolExit(1, `simhost: dnsmasq ${arg} is not simulated (only --test [-C file] and --version)\n`);
  }
  if (!test) throw new ToolExit(1, 'simhost: dnsmasq runs here only as `dnsmasq --test`; the service is started with systemctl\n');
  // -C names a file of the caller's; the default is the host's own.
  const file = confGiven ? confFile : onHostRoot(ctx.hostRoot, confFile);
  const result = checkDnsmasqConfig(file, ctx.hostRoot, confFile);
  if (!result.ok) throw new ToolExit(result.exit, `dnsmasq: ${result.message}\n\n`);
  ctx.err('dnsmasq: syntax check OK.\n');
}
