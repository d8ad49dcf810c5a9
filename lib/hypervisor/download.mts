// Downloads that a later run may trust: curl writes to a temporary name in
// the target's directory, the result is checked, and only then renamed to the
// final name. A download cut short (network, a killed run, a full disk) leaves
// at most a `.<name>.<unique>.part` file, which no run ever reads and the next
// download into the same directory removes; the final name exists only when a
// whole, checked file arrived. Used for the Smallstep apt key and the cloud
// image (the bash used `curl -o`/`wget -O` straight onto the final name, and a
// half file was then reused as if whole).

import fs from 'node:fs';
import path from 'node:path';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { uniqueSuffix } from '../core/fs.mts';
import { debug } from '../core/log.mts';
import { run } from '../core/runner.mts';

export interface DownloadSpec {
  url: string;
  /** The final file, on this machine (already mapped under the host root). */
  target: string;
  /** Mode of the final file; default 0o644. */
  mode?: number;
  /** Time limit of the transfer (ms); default the runner's. */
  timeoutMs?: number;
  /** A look at the downloaded file before it is accepted: a problem, or undefined when it is fine. */
  check?: (file: string) => string | undefined;
}

export type DownloadOutcome = 'present' | 'downloaded';

/** The temporary names a download into `target` uses (for clean-up and tests). */
export function partialPattern(target: string): RegExp {
  const base = path.basename(target).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.${base}\\..+\\.part$`);
}

/**
 * Make sure `target` exists, downloading it when it does not. In dry-run the
 * curl call is only shown. Throws PhoenixError (curl's own message kept) when
 * the download or the check fails; nothing is then left under either name.
 */
export async function downloadOnce(spec: DownloadSpec): Promise<DownloadOutcome> {
  if (fs.existsSync(spec.target)) return 'present';
  const dir = path.dirname(spec.target);
  const temp = path.join(dir, `.${path.basename(spec.target)}.${uniqueSuffix()}.part`);
  if (isDryRun()) {
    await run({ cmd: 'curl', args: ['-fsSL', '-o', temp, spec.url] });
    return 'downloaded';
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  removeStalePartials(spec.target);
  try {
    const result = await run({ cmd: 'curl', args: ['-fsSL', '-o', temp, spec.url], allowFailure: true, ...(spec.timeoutMs === undefined ? {} : { timeoutMs: spec.timeoutMs }) });
    if (result.code !== 0) {
      const said = result.stderr.trim();
      throw new PhoenixError(`downloading ${spec.url} failed (curl exit ${result.code}${said === '' ? '' : `: ${said}`})`, {
        hint: 'check the host can reach that address (DNS, proxy, firewall), then run again: nothing partial was kept',
      });
    }
    if (!fs.existsSync(temp)) throw new PhoenixError(`downloading ${spec.url}: curl reported success but wrote no file`);
    const problem = spec.check?.(temp);
    if (problem !== undefined) throw new PhoenixError(`downloaded ${spec.url}, but it is not usable: ${problem}; it was not kept`);
    fs.chmodSync(temp, spec.mode ?? 0o644);
    fs.renameSync(temp, spec.target);
  } finally {
    fs.rmSync(temp, { force: true });
  }
  return 'downloaded';
}

/** Remove what killed downloads into the same target left behind (never read, only tidied). */
function removeStalePartials(target: string): void {
  const dir = path.dirname(target);
  const pattern = partialPattern(target);
  for (const name of fs.readdirSync(dir)) {
    if (!pattern.test(name)) continue;
    debug(`removing ${path.join(dir, name)}, left by an interrupted download`);
    fs.rmSync(path.join(dir, name), { force: true });
  }
}
