// `apt-get` (update, install) and `dpkg-query` (-W, -s) on the host.

import fs from 'node:fs';
import path from 'node:path';

import { ToolExit, withStateLock } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';
import { loadPackages, PACKAGE_CATALOG, savePackages } from './packages.mts';
import { loadServices, saveServices } from './units.mts';

export function runAptGet(ctx: HostToolContext): void {
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

export function runDpkgQuery(ctx: HostToolContext): void {
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
