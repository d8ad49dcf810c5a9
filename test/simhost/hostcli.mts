// Entry point of the simulated host's own tools (systemctl, apt-get,
// dpkg-query, update-ca-certificates, dnsmasq): `node hostcli.mjs <tool>
// <args…>`, run by the shims in bin/. Same contract as cli.mts: no state
// directory → exit 2, inject.json failures and latency apply, every call
// is one line in calls.jsonl.


import { failureOutput, latencyFor, loadInjection, takeFailure } from './inject.mts';
import { appendCall } from './record.mts';
import { sleepSync, stateRoot, ToolExit, writeAll } from './state.mts';
import { HOST_TOOLS, hostRootOf, runHostTool } from './hostsvc.mts';
import './hostsvc/setup-tools.mts';


export async function main(argv: string[]): Promise<number> {
  const [tool = '', ...args] = argv;
  const started = Date.now();
  const stdout: string[] = [];
  const stderr: string[] = [];
  let exit = 0;
  let root: string | undefined;
  try {
    if (!HOST_TOOLS.includes(tool)) throw new ToolExit(2, `simhost: unknown host tool '${tool}' (known: ${HOST_TOOLS.join(', ')})\n`);
    root = stateRoot();
    const injection = loadInjection(root);
    sleepSync(latencyFor(injection, tool));
    const failure = takeFailure(root, injection, tool, args);
    if (failure) {
      const result = failureOutput(failure, tool, args);
      sleepSync(failure.delay_ms ?? 0);
      throw new ToolExit(result.exit, result.stderr, result.stdout);
    }
    await runHostTool({
      tool,
      argv: args,
      root,
      hostRoot: hostRootOf(root),
      out: (text) => void stdout.push(text),
      err: (text) => void stderr.push(text),
    });
  } catch (error) {
    if (error instanceof ToolExit) {
      if (error.stdout) stdout.push(error.stdout);
      if (error.stderr) stderr.push(error.stderr);
      exit = error.code;
    } else {
      stderr.push(`simhost: internal error in ${tool}: ${(error as Error).stack ?? String(error)}\n`);
      exit = 70;
    }
  }
  writeAll(1, stdout.join(''));
  writeAll(2, stderr.join(''));
  if (root !== undefined) appendCall(root, { tool, argv: args, exit, ms: Date.now() - started, start: started });
  return exit;
}

const invokedDirectly = process.argv[1] !== undefined && /[\\/]hostcli\.m[jt]s$/.test(process.argv[1]);
if (invokedDirectly) process.exitCode = await main(process.argv.slice(2));
