// The legacy bridge lets the bash toolkit and its ports live side by side,
// so an operator can migrate one script at a time.
//
// - `resolveScript` finds a script by its upstream name (the path under the
//   bash tree's bin/, e.g. `managers/lxc-manager.sh`): the port under
//   scripts/ when there is one, else the bash original in the legacy tree.
// - `runScript` runs whichever it found, passing the resolved options and
//   config paths down, and returns its exit status untouched.
// - `installDropIns` puts a small launcher under the upstream name in the
//   legacy tree, so bash that still calls `bin/managers/lxc-manager.sh`
//   runs the port. The original is kept beside it as `<name>.legacy`.
// - A bash script that needs the provisioner password the bash CA shared
//   (SHARED_PASSWORD_SCRIPTS) is refused, with what to do instead, while
//   the CA is the port: resolving it fails, so callers that resolve every
//   script first stop with nothing changed.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from './errors.mts';
import { run, type CommandResult } from './runner.mts';
import { isDryRun } from './context.mts';
import { debug, info } from './log.mts';
import { writeFileAtomic } from './fs.mts';

export { PROJECT_ROOT } from './project-root.mts';
import { PROJECT_ROOT } from './project-root.mts';
const SCRIPTS_DIR = path.join(PROJECT_ROOT, 'scripts');
const DROP_IN_MARK = '# phoenix drop-in launcher';

export interface ResolvedScript {
  upstreamName: string;
  kind: 'port' | 'legacy';
  path: string;
  /** The argument vector prefix that runs it. */
  command: string;
  prefix: string[];
}

/** `managers/lxc-manager.sh` → `managers/lxc-manager` (the port's stem). */
export function portStem(upstreamName: string): string {
  return upstreamName.replace(/\.sh$/, '');
}

/** Node runs .mts itself from 22.18 (type stripping); older Node needs the built .mjs. */
export function nodeRunsTypeScript(): boolean {
  return Boolean((process.features as { typescript?: unknown }).typescript);
}

export interface ResolveOptions {
  legacyDir: string | undefined;
  /** Names (or `all`) to take from the legacy tree even when ported. */
  useLegacy?: readonly string[];
}

export function resolveScript(upstreamName: string, options: ResolveOptions): ResolvedScript {
  const clean = normaliseName(upstreamName);
  const { legacyDir } = options;
  const pinned = pinnedLegacy(clean, options.useLegacy);
  if (pinned) {
    const legacy = legacyDir ? path.join(legacyDir, 'bin', clean) : undefined;
    if (legacy && fs.existsSync(legacy) && !isDropIn(legacy)) return legacyScript(clean, legacy, options);
    const kept = legacy ? `${legacy}.legacy` : undefined;
    if (kept && fs.existsSync(kept)) return legacyScript(clean, kept, options);
    throw new PhoenixError(`PHOENIX_USE_LEGACY asks for the bash ${clean}, but there is none`, {
      hint: legacyDir ? `looked for ${legacy} and ${kept}` : 'set PHOENIX_LEGACY_DIR to the bash toolkit root',
    });
  }
  const stem = path.join(SCRIPTS_DIR, portStem(clean));
  const built = `${stem}.mjs`;
  const source = `${stem}.mts`;
  if (fs.existsSync(built)) {
    return { upstreamName: clean, kind: 'port', path: built, command: process.execPath, prefix: [built] };
  }
  if (fs.existsSync(source)) {
    if (nodeRunsTypeScript()) {
      return { upstreamName: clean, kind: 'port', path: source, command: process.execPath, prefix: [source] };
    }
    throw new PhoenixError(`${clean} is ported (${path.relative(PROJECT_ROOT, source)}) but not built`, {
      hint: `run 'make build' in ${PROJECT_ROOT} (Node ${process.versions.node} cannot run .mts directly)`,
    });
  }
  if (legacyDir) {
    const legacy = path.join(legacyDir, 'bin', clean);
    if (fs.existsSync(legacy) && !isDropIn(legacy)) return legacyScript(clean, legacy, options);
  }
  throw new PhoenixError(`${clean} has no port yet and no legacy copy was found`, {
    exitCode: 127,
    hint: legacyDir
      ? `looked for scripts/${portStem(clean)}.mts and ${path.join(legacyDir, 'bin', clean)}`
      : `set PHOENIX_LEGACY_DIR to the bash toolkit's root (the directory holding bin/) to run the original`,
  });
}

function legacyScript(name: string, file: string, options: ResolveOptions): ResolvedScript {
  refuseWithoutSharedPassword(name, file, options);
  // Through bash, not exec: most upstream scripts were committed without an exec bit.
  return { upstreamName: name, kind: 'legacy', path: file, command: 'bash', prefix: [file] };
}

/** The CA container's application script: while it is the port, no provisioner password is shared. */
export const CA_APP_SCRIPT = 'phoenix_hypervisor_lxc_103.sh';

/**
 * Bash scripts that cannot work without the provisioner password the bash
 * CA left in its shared directory (`provisioner_password.txt`, mounted into
 * every container that mounts the CA's directory), and what the operator
 * can do instead. The ported CA keeps that password on the host only
 * (`step_ca.provisioner_password_file`, 0600) and never writes it there, so
 * these scripts would fail half-way or, for the vLLM one, stop only after
 * the container was built; they are refused before anything runs.
 */
export const SHARED_PASSWORD_SCRIPTS: Readonly<Record<string, { use: string; instead: string }>> = {
  'phoenix_hypervisor_lxc_vllm.sh': {
    use: 'to request the vLLM certificate inside the container',
    instead:
      'issue that certificate from the host (an entry in certificate-manifest.json delivering /etc/ssl/vllm/vllm.crt and vllm.key into the container) and run a copy of the script without its certificate request (a copy that no longer names provisioner_password.txt is run)',
  },
  'lxc_setup/phoenix_hypervisor_feature_install_traefik.sh': {
    use: "to issue Traefik's certificate inside CT 102",
    instead: 'remove it from PHOENIX_USE_LEGACY: the port installs Traefik without the password, and the certificate manager issues its certificate',
  },
  'managers/certificate-renewal-manager.sh': {
    use: 'to sign every certificate',
    instead: 'remove it from PHOENIX_USE_LEGACY: the port signs with step_ca.provisioner_password_file on the host',
  },
  'managers/portainer-manager.sh': {
    use: "to request the Portainer agent's certificate",
    instead: 'remove it from PHOENIX_USE_LEGACY: the port needs no CA secret (certificates come from certificate-manifest.json, through the certificate manager)',
  },
};

/** How the bash scripts name the shared password file (inside a container or under the host's 103/ssl). */
const SHARED_PASSWORD_FILE = 'provisioner_password.txt';

function pinnedLegacy(name: string, useLegacy: readonly string[] | undefined): boolean {
  return (useLegacy ?? []).some((n) => n === 'all' || normaliseName(n) === name);
}

/**
 * Refuse a bash script of SHARED_PASSWORD_SCRIPTS while the CA is the port,
 * when its copy still reads the shared password file (a rewritten copy, or
 * a test double, that no longer does is let through). With the bash CA
 * pinned (PHOENIX_USE_LEGACY) the password is where these scripts look.
 */
function refuseWithoutSharedPassword(name: string, file: string, options: ResolveOptions): void {
  const known = SHARED_PASSWORD_SCRIPTS[name];
  if (!known || pinnedLegacy(CA_APP_SCRIPT, options.useLegacy)) return;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return;
  }
  const reads = text.split('\n').some((line) => !/^\s*#/.test(line) && line.includes(SHARED_PASSWORD_FILE));
  if (!reads) return;
  throw new PhoenixError(
    `refusing to run the bash ${name}: it reads the CA's shared ${SHARED_PASSWORD_FILE} ${known.use}, and the ported ${CA_APP_SCRIPT} keeps the provisioner password on the host only (step_ca.provisioner_password_file)`,
    { hint: `${known.instead}; or keep the bash CA by adding ${CA_APP_SCRIPT} to PHOENIX_USE_LEGACY (it shares the password with every container that mounts its directory). Nothing was run.` },
  );
}

export interface RunScriptOptions extends ResolveOptions {
  env: Record<string, string>;
  /** Capture output instead of passing it through. */
  capture?: boolean;
}

/**
 * Run a script by its upstream name and return its exit status. A port is
 * dry-run aware: in a dry run (of the run context) it gets
 * PHOENIX_DRY_RUN=true through `env` (childEnv) and plans its own commands.
 * A legacy bash script is not to be trusted with dry-run (its flag covered
 * only some commands), so in a dry run it is printed, not run.
 */
export async function runScript(upstreamName: string, args: readonly string[], options: RunScriptOptions): Promise<CommandResult> {
  const script = resolveScript(upstreamName, options);
  if (script.kind === 'legacy') debug(`${script.upstreamName} has no port here; running the bash copy ${script.path}`);
  return run({
    cmd: script.command,
    args: [...script.prefix, ...args],
    mutating: script.kind === 'legacy' && isDryRun(),
    env: options.env,
    stdio: options.capture ? 'pipe' : 'inherit',
    allowFailure: true,
    timeoutMs: 0,
  });
}

/** Phoenix's own tools under scripts/, which have no bash original to stand in for. */
const PHOENIX_ONLY = new Set(['phoenix-dropins.mts']);

/** Every ported script, by upstream name (from the .mts files under scripts/). */
export function portedScripts(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.mts') && !PHOENIX_ONLY.has(entry.name)) found.push(upstreamNameOf(path.relative(SCRIPTS_DIR, full)));
    }
  };
  if (fs.existsSync(SCRIPTS_DIR)) walk(SCRIPTS_DIR);
  return found.sort();
}

/** `managers/lxc-manager.mts` → `managers/lxc-manager.sh`; the CLI entry points have no suffix upstream. */
export function upstreamNameOf(portRelativePath: string): string {
  const stem = portRelativePath.replace(/\.mts$/, '');
  return stem === 'phoenix-cli' || stem === 'phoenix-global' ? stem : `${stem}.sh`;
}

export interface DropInResult {
  name: string;
  outcome: 'installed' | 'unchanged' | 'restored' | 'absent';
}

/**
 * Install launchers for the given ported scripts (default: all) into a
 * legacy tree. With `uninstall`, put the originals back.
 */
export function installDropIns(legacyDir: string, names: readonly string[] = portedScripts(), uninstall = false): DropInResult[] {
  const binDir = path.join(legacyDir, 'bin');
  if (!fs.existsSync(binDir)) throw new PhoenixError(`${binDir} does not exist`, { hint: 'PHOENIX_LEGACY_DIR must name the bash toolkit root, the directory that holds bin/' });
  const ported = new Set(portedScripts());
  return names.map((raw) => {
    const name = normaliseName(raw);
    if (!ported.has(name)) throw new PhoenixError(`${name} has no port; refusing to replace the original with a launcher`);
    const target = path.join(binDir, name);
    const kept = `${target}.legacy`;
    if (uninstall) {
      if (!isDropIn(target)) return { name, outcome: 'absent' };
      if (isDryRun()) info(`DRY-RUN: would restore ${target} from ${kept}`);
      else if (fs.existsSync(kept)) fs.renameSync(kept, target);
      else fs.rmSync(target);
      return { name, outcome: 'restored' };
    }
    if (fs.existsSync(target) && !isDropIn(target) && !fs.existsSync(kept)) {
      if (isDryRun()) info(`DRY-RUN: would keep the original as ${kept}`);
      else fs.renameSync(target, kept);
    }
    const outcome = writeFileAtomic(target, launcher(name), { mode: 0o755 });
    return { name, outcome: outcome === 'unchanged' ? 'unchanged' : 'installed' };
  });
}

function launcher(name: string): string {
  const stem = path.join(SCRIPTS_DIR, portStem(name));
  return [
    '#!/usr/bin/env bash',
    `${DROP_IN_MARK} for ${name}`,
    '# This upstream name now runs the Phoenix TypeScript port; the bash original',
    `# is kept beside it as ${path.basename(name)}.legacy. Remove with: make install-dropins UNINSTALL=1`,
    `node_bin="\${PHOENIX_NODE:-${process.execPath}}"`,
    `port="${stem}.mjs"`,
    `[ -f "$port" ] || port="${stem}.mts"`,
    'exec "$node_bin" "$port" "$@"',
    '',
  ].join('\n');
}

function isDropIn(file: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8').slice(0, 200).includes(DROP_IN_MARK);
  } catch {
    return false;
  }
}

function normaliseName(name: string): string {
  const clean = path.posix.normalize(name.replace(/^\.?\/?(bin\/)?/, ''));
  if (clean.startsWith('..') || path.isAbsolute(clean)) throw new PhoenixError(`not an upstream script name: ${name}`);
  return clean;
}
