// Work inside a VM through the QEMU guest agent, beyond the single calls of
// lib/pve/qm.mts: bash scripts on stdin, bounded waits that say what they wait
// for, and long jobs whose log is followed while the agent is polled.
//
// Every script here is fixed text; the values it needs travel as
// arguments after `bash -s --` (or, for file contents, inside stdin), so no
// manifest value is ever spliced into shell text, and nothing that is
// pushed (a PEM key above all) appears in an argument or a log line.

import * as qm from '../pve/qm.mts';
import { PhoenixError } from '../core/errors.mts';
import { debug, info, warn } from '../core/log.mts';
import { sleep } from '../core/runner.mts';

export interface GuestTiming {
  /** Longest a guest command may run, ms. */
  timeoutMs: number;
  /** Pause between polls, ms. */
  pollMs: number;
  /** Longest wait for the guest agent, ms. */
  agentTimeoutMs: number;
}

export interface ScriptOptions {
  mutating?: boolean;
  allowFailure?: boolean;
  timing: GuestTiming;
  /** How long one `qm guest exec` waits before it hands back a pid. */
  agentWaitSeconds?: number;
}

/** Run a bash script inside the VM; the script is stdin, the values are its arguments. */
export function guestScript(vmid: string, script: string, args: readonly string[], options: ScriptOptions): Promise<qm.GuestExecResult> {
  return qm.guestExec(vmid, ['bash', '-s', '--', ...args], {
    input: script,
    mutating: options.mutating ?? true,
    allowFailure: options.allowFailure ?? false,
    timeoutMs: options.timing.timeoutMs,
    pollMs: options.timing.pollMs,
    agentWaitSeconds: options.agentWaitSeconds ?? 30,
  });
}

export async function waitForAgent(vmid: string, timing: GuestTiming): Promise<void> {
  info(`Waiting for the guest agent of VM ${vmid} (up to ${Math.round(timing.agentTimeoutMs / 1000)} s)...`);
  try {
    await qm.waitForAgent(vmid, timing.agentTimeoutMs, timing.pollMs);
  } catch (err) {
    if (!(err instanceof PhoenixError)) throw err;
    throw new PhoenixError(err.message, {
      hint: 'the VM needs qemu-guest-agent installed and running; Phoenix installs it through cloud-init user-data when a storage holds snippets (see `qm config ' + vmid + '` cicustom), otherwise the image must bring it',
    });
  }
  info(`Guest agent of VM ${vmid} is responding.`);
}

/**
 * `cloud-init status --wait`, polled to its real end. 0 is done; 2 means
 * cloud-init finished with recoverable errors (a warning, not a reboot: the
 * bash rebooted on 2); anything else is an error with cloud-init's words.
 */
export async function waitForCloudInit(vmid: string, timing: GuestTiming): Promise<void> {
  info(`Waiting for cloud-init to finish in VM ${vmid}...`);
  const result = await qm.guestExec(vmid, ['cloud-init', 'status', '--wait'], {
    mutating: false,
    allowFailure: true,
    timeoutMs: timing.timeoutMs,
    pollMs: timing.pollMs,
  });
  const said = lastLine(result.stdout) || lastLine(result.stderr);
  if (result.exitcode === 0) {
    info(`cloud-init finished in VM ${vmid}${said ? ` (${said})` : ''}.`);
    return;
  }
  if (result.exitcode === 2) {
    warn(`cloud-init in VM ${vmid} finished with recoverable errors${said ? `: ${said}` : ''}; see /var/log/cloud-init.log in the guest`);
    return;
  }
  throw new PhoenixError(`cloud-init failed in VM ${vmid} (exit ${result.exitcode})${said ? `: ${said}` : ''}`, {
    hint: `look at /var/log/cloud-init.log and /var/log/cloud-init-output.log inside the VM (qm guest exec ${vmid} -- tail -n 50 /var/log/cloud-init-output.log)`,
  });
}

export interface JobOptions {
  /** Shown in front of every log line of the job. */
  label: string;
  /** Log file in the guest the job writes to; followed while the job runs. */
  logFile: string;
  timing: GuestTiming;
}

/**
 * Run a long job (a feature) and follow its log file while polling the
 * agent for its exit. The agent keeps the process's exit status, so there
 * is no exit-code file and no nohup: a job whose VM reboots fails at the
 * next poll instead of running into a half-hour time-out.
 */
export async function runJob(vmid: string, script: string, args: readonly string[], options: JobOptions): Promise<qm.GuestExecResult> {
  let printed = 0;
  let lastNews = Date.now();
  const follow = async (): Promise<void> => {
    try {
      const tail = await qm.guestExec(vmid, ['tail', '-n', `+${printed + 1}`, options.logFile], {
        mutating: false,
        allowFailure: true,
        timeoutMs: options.timing.timeoutMs,
        pollMs: options.timing.pollMs,
        agentWaitSeconds: 10,
      });
      if (tail.exitcode !== 0) return;
      const complete = completeLines(tail.stdout);
      for (const line of complete) info(`[${options.label}] ${line}`);
      printed += complete.length;
      if (complete.length > 0) lastNews = Date.now();
    } catch (err) {
      debug(`following ${options.logFile} in VM ${vmid}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  let finished = false;
  const job = guestScript(vmid, script, args, { allowFailure: true, timing: options.timing, agentWaitSeconds: 5 }).finally(() => {
    finished = true;
  });
  // A rejection is handled where the job is awaited below; this only keeps
  // Node from reporting it as unhandled while the log is being followed.
  job.catch(() => undefined);
  const started = Date.now();
  while (!finished) {
    await Promise.race([sleep(options.timing.pollMs), job.then(() => undefined, () => undefined)]);
    if (finished) break;
    await follow();
    // A quiet job still says it is alive, once a minute.
    if (Date.now() - lastNews >= 60_000) {
      info(`${options.label} in VM ${vmid}: still running after ${Math.round((Date.now() - started) / 1000)} s`);
      lastNews = Date.now();
    }
  }
  const result = await job;
  await follow();
  return result;
}

/** Lines that ended with a newline; a line still being written waits for the next read. */
export function completeLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  lines.pop();
  return lines;
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

// ---------------------------------------------------------------- scripts

/**
 * Mount the VM's NFS volumes. Arguments come in fours: server:path,
 * mount point, options, and the fstab line to keep. A line for the same
 * mount point with other options is replaced; a mount point counts as
 * mounted only when `mountpoint` says so (the bash grepped `mount` output,
 * where /mnt/persistent also matched /mnt/persistent2).
 */
export const MOUNT_SCRIPT = `set -eu
fstab=\${PHOENIX_FSTAB:-/etc/fstab}
while [ "$#" -ge 4 ]; do
  source=$1 target=$2 options=$3 line=$4
  shift 4
  mkdir -p -- "$target"
  if ! grep -qxF -- "$line" "$fstab"; then
    field=$(printf '%s' "$target" | sed 's/ /\\\\040/g')
    tmp=$(mktemp "$fstab.phoenix.XXXXXX")
    mp=$field awk '$1 ~ /^#/ || $2 != ENVIRON["mp"]' "$fstab" > "$tmp"
    printf '%s\\n' "$line" >> "$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$fstab"
    echo "fstab: $line"
  fi
  if ! mountpoint -q -- "$target"; then
    mount -- "$target" || true
  fi
  if ! mountpoint -q -- "$target"; then
    echo "$source is not mounted on $target" >&2
    exit 32
  fi
done
`;

export interface MountArgs {
  server: string;
  path: string;
  mountPoint: string;
  options?: string | undefined;
}

export function mountArgs(volumes: readonly MountArgs[]): string[] {
  const args: string[] = [];
  for (const v of volumes) {
    const options = ['defaults', '_netdev', 'nofail', ...(v.options ? v.options.split(',').map((o) => o.trim()).filter(Boolean) : [])].join(',');
    const line = `${fstabField(`${v.server}:${v.path}`)} ${fstabField(v.mountPoint)} nfs ${options} 0 0`;
    args.push(`${v.server}:${v.path}`, v.mountPoint, options, line);
  }
  return args;
}

/** fstab fields escape blanks as octal. */
function fstabField(value: string): string {
  return value.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\t/g, '\\011');
}

export interface StagedFile {
  /** Absolute path in the guest. */
  path: string;
  content: string | Buffer;
  /** Octal, e.g. '0600'. */
  mode: string;
}

/**
 * A script that writes files into the guest from its own stdin: each file
 * is a base64 here-document, written to a temporary name with its final
 * mode and then renamed. The contents never touch an argument.
 */
export function stagingScript(files: readonly StagedFile[]): string {
  const lines = ['set -eu', 'umask 077'];
  files.forEach((file, i) => {
    if (!/^\/[A-Za-z0-9_./@+-]+$/.test(file.path) || file.path.includes('..')) throw new PhoenixError(`refusing to stage an unusual guest path: ${JSON.stringify(file.path)}`);
    if (!/^0?[0-7]{3}$/.test(file.mode)) throw new PhoenixError(`bad file mode ${file.mode} for ${file.path}`);
    const dir = file.path.slice(0, file.path.lastIndexOf('/')) || '/';
    const tmp = `${file.path}.phoenix-tmp`;
    const data = (typeof file.content === 'string' ? Buffer.from(file.content) : file.content).toString('base64').replace(/(.{76})/g, '$1\n');
    const marker = `PHOENIX_FILE_${i}`;
    lines.push(`mkdir -p '${dir}'`, `base64 -d > '${tmp}' <<'${marker}'`, data, marker, `chmod ${file.mode} '${tmp}'`, `mv -f '${tmp}' '${file.path}'`);
  });
  return `${lines.join('\n')}\n`;
}

/**
 * Start a staged feature script: from its directory, with the VMID as $1,
 * output into its log (emptied first, so the follower counts from line 1).
 * Arguments: directory, script file name, log file, VMID.
 */
export const FEATURE_LAUNCH_SCRIPT = `set -u
dir=$1 script=$2 log=$3 vmid=$4
mkdir -p -- "$(dirname -- "$log")"
: > "$log"
cd -- "$dir" || exit 1
bash "./$script" "$vmid" >> "$log" 2>&1
`;

/**
 * Clean the template before conversion, so every clone boots as a new
 * machine: cloud-init state and logs, machine id, SSH host keys (cloud-init
 * makes new ones), and the feature staging directory.
 */
export const TEMPLATE_CLEANUP_SCRIPT = `set -eu
staging=$1
cloud-init clean --logs
rm -rf -- "$staging"
rm -f /etc/ssh/ssh_host_*
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
sync
`;
