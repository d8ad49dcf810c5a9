// base_setup: the tools every Phoenix container gets (curl, jq, git, …) and
// the en_US.UTF-8 locale. Installed means: dpkg lists every package as
// installed, the locale is generated and /etc/default/locale names it.
// The bash looked for `gnupg` and `locales` as commands, found neither, and
// so reinstalled on every run; its locale.gen edit never matched.

import { applyPlan, type FeaturePlan } from '../../guest/feature-plan.mts';
import { once, packageProbe } from '../../guest/feature-container.mts';
import { probe, readGuestFile, requireRunning, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';

export const FEATURE = 'base_setup';

/** The upstream's package list, checked as packages, not as commands. */
export const BASE_PACKAGES = ['curl', 'wget', 'vim', 'htop', 'jq', 'git', 'rsync', 's-tui', 'gnupg', 'locales'] as const;

/** The locale the upstream generates and makes the default. */
export const LOCALE = 'en_US.UTF-8';

/** `locale -a` spells generated locales in lower case without the dash. */
const LOCALE_LISTED = /^en_US\.utf8$/im;
const LOCALE_DEFAULTS = [/^LANG="?en_US\.UTF-8"?$/m, /^LC_ALL="?en_US\.UTF-8"?$/m];

/**
 * One step: the packages and the locale are one guest script, so a fresh
 * container gets one `pct exec` and a partial one only what it lacks.
 */
export async function plan(ctid: string, _context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  const packages = packageProbe(ctid, BASE_PACKAGES);
  const localeReady = once(() => localeConfigured(ctid));
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'host',
        id: 'base-packages-and-locale',
        title: `install the base packages and the ${LOCALE} locale`,
        check: async () => (await packages.missing()).length === 0 && (await localeReady()),
        apply: async () => {
          const missing = await packages.missing();
          const ready = await localeReady();
          await runGuestScript(ctid, 'base_setup.sh', [ready ? 'no' : 'yes', ...missing], {
            feature: FEATURE,
            label: missing.length > 0 ? `installing ${missing.join(' ')}` : `generating the ${LOCALE} locale`,
          });
          return [...(missing.length > 0 ? [`installed ${missing.join(' ')}`] : []), ...(ready ? [] : [`generated ${LOCALE} and made it the default`])];
        },
      },
    ],
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}

async function localeConfigured(ctid: string): Promise<boolean> {
  const listed = await probe(ctid, ['locale', '-a']);
  if (listed.code !== 0 || !LOCALE_LISTED.test(listed.stdout)) return false;
  const defaults = await readGuestFile(ctid, '/etc/default/locale');
  return defaults !== undefined && LOCALE_DEFAULTS.every((re) => re.test(defaults));
}
