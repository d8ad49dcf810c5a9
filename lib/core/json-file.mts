// JSON files Phoenix keeps for itself (lifecycle records, delivery state):
// read through fs-extra, where a missing or damaged file simply means "none
// yet". Written with writeFileAtomic (fs.mts), never in place. Kept apart
// from fs.mts so scripts that keep no such file do not load fs-extra: the
// modules every script loads at start (fs.mts, lock.mts, config.mts,
// validation-cache.mts) stay on node:fs, where loading fs-extra would cost
// more than the one call it replaces.

import fse from 'fs-extra';

/** The parsed file, or undefined when it is missing or not JSON. */
export function readJsonIfPresent(file: string): unknown {
  return (fse.readJsonSync(file, { throws: false }) as unknown) ?? undefined;
}
