#!/usr/bin/env node
// phoenix-cli: the operator's entry point. Its command line is declared in
// lib/cli/orchestrator.mts; what a verb does is lib/cli/phoenix.mts.

import { runMain } from '../lib/core/main.mts';
import { CLI_ARGS, cliArgs } from '../lib/cli/orchestrator.mts';
import { runPhoenixCli } from '../lib/cli/phoenix.mts';

await runMain(CLI_ARGS, (parsed, context) => runPhoenixCli(cliArgs(parsed), context));
