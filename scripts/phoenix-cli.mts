#!/usr/bin/env node
// phoenix-cli: the operator's entry point. Its command line is declared in
// lib/cli/orchestrator.mts; what a verb does is lib/cli/phoenix.mts.

import { runMain } from '../lib/core/main.mts';
import { CLI_ARGS, cliArgs } from '../lib/cli/orchestrator.mts';

// The domain modules load once the arguments are known to be good, so
// `--help` and a usage error read none of them.
await runMain(CLI_ARGS, async (parsed, context) => (await import('../lib/cli/phoenix.mts')).runPhoenixCli(cliArgs(parsed), context));
