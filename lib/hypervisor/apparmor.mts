// AppArmor on the host (setup steps 14 and 15): Phoenix's own profiles for
// the containers, and the home-directory tunables.
//
// What the bash got wrong, and how this differs:
// - Step 14 required <base>/etc/apparmor/, a directory deleted upstream, so
//   `phoenix setup` died there. Without the directory the step is skipped
//   with its reason (the manifests run their containers unconfined).
// - Each profile was unloaded and loaded again on every run, unchecked;
//   here a profile is parsed first (`apparmor_parser -Q -K`, nothing
//   loaded), written only when its text changed, loaded with `-r` only
//   then, and AppArmor reloaded once and only when something changed.
// - The rename of the profile to its file name dropped its flags (the sed
//   replaced the whole line); here only the name is replaced.
// - tunables/nesting named `lxc-phoenix-v2`, which no profile was called
//   after the rename; here it lists the names the profiles really have, and
//   is written only when there are profiles.
// - Step 15 overwrote the distro's tunables/home and lost its
//   `include <tunables/home.d>`; here the distro file is kept (the include
//   added back in a marked block if an earlier run removed it) and
//   Phoenix's additions go to tunables/home.d/phoenix, a file it owns.

import fs from 'node:fs';
import path from 'node:path';
import { query, run } from '../core/runner.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { ensureOwnedBlock } from '../core/owned-block.mts';
import { readIfExists, removeFile, writeFileAtomic } from '../core/fs.mts';
import { hostFile, systemctl } from './host.mts';
import { fileChange, type SetupContext, type StepResult } from './setup-step.mts';

export const APPARMOR_DIR = '/etc/apparmor.d';
export const TUNABLES_HOME = `${APPARMOR_DIR}/tunables/home`;
export const TUNABLES_HOME_D = `${APPARMOR_DIR}/tunables/home.d/phoenix`;
export const TUNABLES_NESTING = `${APPARMOR_DIR}/tunables/nesting`;
const HEADER = '# Written by Phoenix';
const HOME_INCLUDE_BLOCK = { begin: '# BEGIN phoenix: home.d include', end: '# END phoenix: home.d include' };

/**
 * The definitions every AppArmor profile expects from tunables/home, for a
 * host where the file is missing altogether (the apparmor package would put
 * its own back on reinstall): the home directories and the include of
 * tunables/home.d, where local additions (Phoenix's among them) go.
 */
export const MINIMAL_TUNABLES_HOME = `# Written by Phoenix: the file was missing. \`apt-get install --reinstall apparmor\`
# restores the distribution's own version.
@{HOMEDIRS}=/home/
@{HOME}=@{HOMEDIRS}/*/ /root/
include <tunables/home.d>
`;

// ---------------------------------------------------------------- the texts

/** The profile text with its (first) profile renamed to `name`, flags and attachment kept. */
export function renameProfile(text: string, name: string): string {
  return text.replace(/^profile[ \t]+(?:"[^"\n]*"|[^\s{]+)(?=[ \t][^\n]*\{[ \t]*$|[ \t]*\{[ \t]*$)/m, `profile ${name}`);
}

/** Profile names come from file names: `-` becomes `_` (as the bash did). */
export function profileName(file: string): string {
  return file.replace(/-/g, '_');
}

export function nestingText(names: readonly string[]): string {
  return `${HEADER} (hypervisor_feature_setup_apparmor); edits are overwritten.\n# The profiles Phoenix installs for nested containers.\n@{apparmor_nesting_profiles} = ${names.join(' ')}\n`;
}

export function homeDText(dirs: readonly string[]): string {
  return `${HEADER} (hypervisor_feature_fix_apparmor_tunables, from apparmor.home_dirs); edits are overwritten.\n@{HOMEDIRS}+=${dirs.join(' ')}\n`;
}

/** A profile that only parses when the home tunables are sound. */
const TUNABLES_PROBE = 'include <tunables/global>\nprofile phoenix_tunables_probe {\n  @{HOME}/.phoenix-probe r,\n  @{HOMEDIRS}/ r,\n}\n';

/** Parse only (nothing loaded, no cache): the text on stdin, includes from /etc/apparmor.d. */
async function parseCheck(text: string, what: string): Promise<void> {
  const result = await query({ cmd: 'apparmor_parser', args: ['-Q', '-K'], input: text, allowFailure: true, quiet: true });
  if (result.code !== 0) {
    const message = result.stderr.split('\n').filter((l) => l.trim() !== '' && !/^Cache read\/write disabled/.test(l)).join('; ');
    throw new PhoenixError(`${what} does not parse: ${message || `apparmor_parser exited ${result.code}`}`, { hint: 'nothing was installed or loaded; fix the profile and run again' });
  }
}

function isPhoenixFile(file: string): boolean {
  return readIfExists(file)?.toString('utf8').startsWith(HEADER) === true;
}

// ---------------------------------------------------------------- step 14: the profiles

export interface ProfileSource {
  file: string;
  name: string;
  text: string;
}

/** The profiles in <base>/etc/apparmor/, renamed after their files; undefined when the directory does not exist. */
export function profileSources(baseDir: string): ProfileSource[] | undefined {
  const dir = path.join(baseDir, 'etc', 'apparmor');
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return undefined;
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !/\.(dpkg-\w+|md|txt|orig|bak)$|~$/.test(e.name))
    .map((e) => e.name)
    .sort()
    .map((file) => {
      const name = profileName(file);
      return { file, name, text: renameProfile(fs.readFileSync(path.join(dir, file), 'utf8'), name) };
    });
}

/** Setup step 14 (hypervisor_feature_setup_apparmor.sh). */
export async function setupApparmor(context: SetupContext): Promise<StepResult> {
  const { options } = context;
  const sourceDir = path.join(options.baseDir, 'etc', 'apparmor');
  const sources = profileSources(options.baseDir);
  if (sources === undefined) return { changes: [], skipped: `no AppArmor profiles to install (${sourceDir} does not exist; the containers run unconfined or with Proxmox's own profiles)` };
  if (sources.length === 0) return { changes: [], skipped: `no AppArmor profiles to install (${sourceDir} is empty)` };

  // Every profile is checked before any is installed: one bad profile changes nothing. The
  // nesting tunable is put inline, so the check sees it even before (or, in dry-run, without) its write.
  const nesting = nestingText(sources.map((s) => s.name));
  for (const source of sources) {
    const checked = source.text.replace(/^[ \t]*#?include[ \t]+(?:if[ \t]+exists[ \t]+)?<tunables\/nesting>[ \t]*$/gm, nesting.trimEnd());
    await parseCheck(checked, `AppArmor profile ${path.join(sourceDir, source.file)}`);
  }

  const changes: string[] = [];
  // Before the profiles: they include it when they are loaded.
  fileChange(changes, writeFileAtomic(hostFile(options, TUNABLES_NESTING), nesting, { mode: 0o644 }), TUNABLES_NESTING);

  let loaded = 0;
  for (const source of sources) {
    const hostPath = `${APPARMOR_DIR}/${source.file}`;
    const outcome = writeFileAtomic(hostFile(options, hostPath), source.text, { mode: 0o644 });
    if (outcome === 'unchanged') continue;
    fileChange(changes, outcome, hostPath, `profile ${source.name}`);
    await run({ cmd: 'apparmor_parser', args: ['-r', hostFile(options, hostPath)] });
    loaded += 1;
  }
  if (loaded > 0) {
    await systemctl('reload-or-restart', 'apparmor.service');
    changes.push(`loaded ${loaded} profile(s) and reloaded apparmor.service`);
  }
  return { changes };
}

// ---------------------------------------------------------------- step 15: the home tunables

/** Setup step 15 (hypervisor_feature_fix_apparmor_tunables.sh). */
export async function fixApparmorTunables(context: SetupContext): Promise<StepResult> {
  const { config, options } = context;
  const changes: string[] = [];
  const home = hostFile(options, TUNABLES_HOME);
  const current = readIfExists(home)?.toString('utf8');
  if (current === undefined) {
    fileChange(changes, writeFileAtomic(home, MINIMAL_TUNABLES_HOME, { mode: 0o644 }), TUNABLES_HOME, 'it was missing');
  } else if (!/^[ \t]*#?include[ \t]+(?:if[ \t]+exists[ \t]+)?<tunables\/home\.d\/?>/m.test(current)) {
    // An earlier overwrite (the bash's) dropped the include: put it back, keep every other byte.
    const outcome = ensureOwnedBlock(home, { ...HOME_INCLUDE_BLOCK, lines: ['include <tunables/home.d>'] });
    if (outcome !== 'unchanged') changes.push(`${TUNABLES_HOME}: include <tunables/home.d> restored`);
  }

  const dirs = config.hypervisor.apparmor?.home_dirs ?? [];
  const homeD = hostFile(options, TUNABLES_HOME_D);
  if (dirs.length > 0) fileChange(changes, writeFileAtomic(homeD, homeDText(dirs), { mode: 0o644 }), TUNABLES_HOME_D, `@{HOMEDIRS}+=${dirs.join(' ')}`);
  else if (isPhoenixFile(homeD) && removeFile(homeD) === 'removed') changes.push(`removed ${TUNABLES_HOME_D} (apparmor.home_dirs is empty)`);

  // The tunables every profile includes must parse, whoever wrote them.
  if (!isDryRun() || changes.length === 0) await parseCheck(TUNABLES_PROBE, `the AppArmor tunables under ${APPARMOR_DIR}/tunables`);
  return { changes };
}
