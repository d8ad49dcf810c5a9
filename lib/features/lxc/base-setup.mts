// base_setup: the tools every Phoenix container gets (curl, jq, git, …) and
// the en_US.UTF-8 locale. Installed means: dpkg lists every package as
// installed, the locale is generated and /etc/default/locale names it.
// The bash looked for `gnupg` and `locales` as commands, found neither, and
// so reinstalled on every run; its locale.gen edit never matched.

import { changeLog, missingPackages, probe, readGuestFile, requireRunning, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'base_setup';

/** The upstream's package list, checked as packages, not as commands. */
export const BASE_PACKAGES = ['curl', 'wget', 'vim', 'htop', 'jq', 'git', 'rsync', 's-tui', 'gnupg', 'locales'] as const;

/** The locale the upstream generates and makes the default. */
export const LOCALE = 'en_US.UTF-8';

/** `locale -a` spells generated locales in lower case without the dash. */
const LOCALE_LISTED = /^en_US\.utf8$/im;
const LOCALE_DEFAULTS = [/^LANG="?en_US\.UTF-8"?$/m, /^LC_ALL="?en_US\.UTF-8"?$/m];

export async function install(ctid: string, _context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  const missing = await missingPackages(ctid, BASE_PACKAGES);
  const localeReady = await localeConfigured(ctid);
  if (missing.length === 0 && localeReady) return changes.result();

  await runGuestScript(ctid, 'base_setup.sh', [localeReady ? 'no' : 'yes', ...missing], {
    feature: FEATURE,
    label: missing.length > 0 ? `installing ${missing.join(' ')}` : `generating the ${LOCALE} locale`,
  });
  if (missing.length > 0) changes.add(`installed ${missing.join(' ')}`);
  if (!localeReady) changes.add(`generated ${LOCALE} and made it the default`);
  return changes.result();
}

async function localeConfigured(ctid: string): Promise<boolean> {
  const listed = await probe(ctid, ['locale', '-a']);
  if (listed.code !== 0 || !LOCALE_LISTED.test(listed.stdout)) return false;
  const defaults = await readGuestFile(ctid, '/etc/default/locale');
  return defaults !== undefined && LOCALE_DEFAULTS.every((re) => re.test(defaults));
}
