// `systemctl` on the host. Exit codes are systemd's: is-active 3 when not
// active, is-enabled 1 when not enabled, status 3 (inactive) or 4 (no such
// unit), 5 for start/stop/restart of a unit that does not exist. A unit
// file changed since it was loaded needs `daemon-reload`, with systemd's
// warning otherwise.

import fs from 'node:fs';
import path from 'node:path';

import { ToolExit, withStateLock } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';
import { checkDnsmasqConfig } from './dnsmasq.mts';
import { loadServices, RELOADABLE, resolveUnit, saveServices, sha256, unitFile, unitName, wantedBy, type ResolvedUnit, type ServiceState } from './units.mts';

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

export function runSystemctl(ctx: HostToolContext): void {
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
