// Debian packages inside simulated guests. Guests run nothing, but what an
// install script would leave behind matters to the next step: a feature
// checks `dpkg-query` before installing and `which` after. So when a script
// sent on stdin succeeds, its `apt-get install` / `apt_get install` lines
// (with "$@" taken from the script's arguments) mark those packages as
// installed, and the programs a known package provides appear as
// executables; a literal `install -m <mode> <src> /abs/path` line leaves an
// executable there. `dpkg-query -W` answers from that list.

import fs from 'node:fs';
import path from 'node:path';
import { guestPrograms, stdinScriptHooks, type ExecResult, type GuestFs } from '../guestfs.mts';

/** The list of installed packages inside the guest tree (one name per line). */
const PACKAGE_LIST = '/var/lib/dpkg/phoenix-sim-installed';

/** Executables a package provides (only those something checks for). */
const PROVIDES: Readonly<Record<string, readonly string[]>> = {
  'step-cli': ['/usr/bin/step'],
  'step-ca': ['/usr/bin/step-ca'],
  nginx: ['/usr/sbin/nginx'],
  'nginx-full': ['/usr/sbin/nginx'],
  'nginx-light': ['/usr/sbin/nginx'],
  'nginx-core': ['/usr/sbin/nginx'],
  'nginx-extras': ['/usr/sbin/nginx'],
  'docker-ce': ['/usr/bin/dockerd'],
  'docker-ce-cli': ['/usr/bin/docker'],
  curl: ['/usr/bin/curl'],
  jq: ['/usr/bin/jq'],
  gpg: ['/usr/bin/gpg'],
  python3: ['/usr/bin/python3'],
  'python3-venv': [],
  'ca-certificates': ['/usr/sbin/update-ca-certificates'],
  dnsmasq: ['/usr/sbin/dnsmasq'],
  'nfs-common': ['/usr/sbin/mount.nfs'],
};

export function installedPackages(g: GuestFs): Set<string> {
  try {
    return new Set(fs.readFileSync(g.resolve(PACKAGE_LIST), 'utf8').split('\n').filter(Boolean));
  } catch {
    return new Set();
  }
}

/** Packages apt pulls in with another (only those whose files matter here). */
const DEPENDS: Readonly<Record<string, readonly string[]>> = {
  'nginx-full': ['libnginx-mod-stream'],
  'nginx-extras': ['libnginx-mod-stream'],
};

export function markInstalled(g: GuestFs, requested: readonly string[]): void {
  if (requested.length === 0) return;
  const packages = [...new Set(requested.flatMap((name) => [name, ...(DEPENDS[name] ?? [])]))];
  const all = installedPackages(g);
  for (const name of packages) {
    // Conffiles come with the first install only: a reinstall keeps what the admin removed.
    if (!all.has(name)) CONFFILES[name]?.(g);
    all.add(name);
    for (const program of PROVIDES[name] ?? []) placeExecutable(g, program);
  }
  const list = g.resolve(PACKAGE_LIST);
  fs.mkdirSync(path.dirname(list), { recursive: true });
  fs.writeFileSync(list, [...all].sort().join('\n') + '\n');
}

/** What a package's postinst leaves in /etc that later steps read (written once, never over a changed file). */
const CONFFILES: Readonly<Record<string, (g: GuestFs) => void>> = {
  nginx: nginxLayout,
  'nginx-full': nginxLayout,
  'nginx-light': nginxLayout,
  'nginx-core': nginxLayout,
  'nginx-extras': nginxLayout,
  'libnginx-mod-stream': (g) => {
    if (!debianLike(g)) return;
    writeOnce(g, '/usr/share/nginx/modules-available/mod-stream.conf', 'load_module modules/ngx_stream_module.so;\n');
    linkOnce(g, '/etc/nginx/modules-enabled/50-mod-stream.conf', '/usr/share/nginx/modules-available/mod-stream.conf');
  },
};

function debianLike(g: GuestFs): boolean {
  try {
    return /^(ID|ID_LIKE)=.*\bdebian\b/m.test(fs.readFileSync(g.resolve('/etc/os-release'), 'utf8'));
  } catch {
    return false;
  }
}

function writeOnce(g: GuestFs, guestPath: string, content: string): void {
  const file = g.resolve(guestPath);
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

function linkOnce(g: GuestFs, guestPath: string, target: string): void {
  const link = g.resolveNoFollow(guestPath);
  fs.mkdirSync(path.dirname(link), { recursive: true });
  try {
    fs.lstatSync(link);
  } catch {
    fs.symlinkSync(target, link);
  }
}

/**
 * The layout of Debian's and Ubuntu's nginx packages: modules-enabled read
 * at the top level, conf.d and sites-enabled inside http {}, and a default
 * site enabled through a symlink into sites-available.
 */
function nginxLayout(g: GuestFs): void {
  if (!debianLike(g)) return;
  for (const dir of ['/etc/nginx/conf.d', '/etc/nginx/modules-enabled', '/etc/nginx/sites-available', '/etc/nginx/sites-enabled', '/etc/nginx/snippets', '/var/log/nginx', '/var/www/html']) fs.mkdirSync(g.resolve(dir), { recursive: true });
  writeOnce(
    g,
    '/etc/nginx/nginx.conf',
    [
      '# Main configuration of the simulated guest nginx (Debian layout).',
      'user www-data;',
      'worker_processes auto;',
      'pid /run/nginx.pid;',
      'include /etc/nginx/modules-enabled/*.conf;',
      '',
      'events {',
      '\tworker_connections 768;',
      '}',
      '',
      'http {',
      '\tsendfile on;',
      '\tinclude /etc/nginx/mime.types;',
      '\tdefault_type application/octet-stream;',
      '\tssl_protocols TLSv1.2 TLSv1.3;',
      '\taccess_log /var/log/nginx/access.log;',
      '\terror_log /var/log/nginx/error.log;',
      '\tinclude /etc/nginx/conf.d/*.conf;',
      '\tinclude /etc/nginx/sites-enabled/*;',
      '}',
      '',
    ].join('\n'),
  );
  writeOnce(g, '/etc/nginx/mime.types', 'types {\n\ttext/html html htm;\n\ttext/css css;\n\tapplication/javascript js;\n\tapplication/json json;\n}\n');
  writeOnce(g, '/etc/nginx/sites-available/default', '# The package\'s placeholder site.\nserver {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n\troot /var/www/html;\n\tindex index.html;\n\tserver_name _;\n}\n');
  linkOnce(g, '/etc/nginx/sites-enabled/default', '/etc/nginx/sites-available/default');
}

function placeExecutable(g: GuestFs, guestPath: string): void {
  const file = g.resolve(guestPath);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file)) fs.writeFileSync(file, `#!/bin/sh\n# ${path.posix.basename(guestPath)} (simulated)\n`);
  fs.chmodSync(file, 0o755);
}

/** Words of one script line, with "$@" / $@ replaced by the script's arguments. */
function words(line: string, args: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of line.trim().split(/\s+/)) {
    if (raw === '"$@"' || raw === '$@') out.push(...args);
    else out.push(raw.replace(/^["']|["']$/g, ''));
  }
  return out;
}

function recordScriptInstalls(g: GuestFs, script: string, args: readonly string[]): void {
  const packages: string[] = [];
  for (const line of script.split('\n')) {
    const w = words(line.replace(/#.*$/, ''), args);
    const apt = w.findIndex((word) => word === 'apt-get' || word === 'apt_get' || word === 'apt');
    if (apt >= 0 && w[apt + 1] === 'install') {
      // Operands only; shell variables cannot be resolved here.
      packages.push(...w.slice(apt + 2).filter((word) => !word.startsWith('-') && !word.includes('$') && /^[a-z0-9][a-z0-9+.-]*(=.*)?$/.test(word)).map((word) => word.split('=')[0]!));
    }
    if (w[0] === 'install') {
      const mode = w[w.indexOf('-m') + 1];
      const dest = w[w.length - 1];
      if (w.includes('-m') && mode && /[1357]/.test(mode) && dest?.startsWith('/') && !dest.includes('$') && !w.includes('-d')) placeExecutable(g, dest);
    }
  }
  markInstalled(g, packages);
}

stdinScriptHooks.push(recordScriptInstalls);

/** `dpkg-query -W [--showformat=F | -f F] pkg...` from the installed list. */
function dpkgQuery(g: GuestFs, args: readonly string[]): ExecResult {
  let format = '${Package}\t${Version}\n';
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-W' || a === '--show') continue;
    if (a.startsWith('--showformat=')) format = a.slice('--showformat='.length);
    else if (a === '-f' || a === '--showformat') format = args[++i] ?? format;
    else if (a.startsWith('-')) return { exit: 2, stdout: '', stderr: `dpkg-query: error: unknown option ${a}\n` };
    else names.push(a);
  }
  const escaped = format.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
  const installed = installedPackages(g);
  let stdout = '';
  let stderr = '';
  for (const name of names) {
    if (installed.has(name)) stdout += escaped.replace(/\$\{Package\}/g, name).replace(/\$\{Status\}/g, 'install ok installed').replace(/\$\{Version\}/g, '1.0-sim').replace(/\$\{db:Status-Abbrev\}/g, 'ii ');
    else stderr += `dpkg-query: no packages found matching ${name}\n`;
  }
  return { exit: stderr ? 1 : 0, stdout, stderr };
}

guestPrograms['dpkg-query'] = dpkgQuery;
