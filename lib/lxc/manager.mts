// lxc-manager.sh <action> <ctid>, after its command line is read: the run
// every guest manager makes (lib/guest/manager.mts), with the container's
// actions. The create sequence is create.mts, the other verbs verbs.mts,
// create-templates templates.mts.

import type { ScriptContext } from '../core/main.mts';
import { runGuestManager } from '../guest/manager.mts';
import { newSession, notInManifest } from './session.mts';
import { createContainer } from './create.mts';
import { createTemplates } from './templates.mts';
import { deleteContainer, restartContainer, startContainer, statusTable, stopContainer, syncContainer } from './verbs.mts';

export type LxcVerb = 'create-templates' | 'create' | 'converge' | 'sync' | 'start' | 'stop' | 'restart' | 'delete' | 'status';

/** What lxc-manager takes from its command line. */
export interface LxcManagerArgs {
  command: LxcVerb;
  /** The CTIDs (several for `status`, none for `create-templates`). */
  operands: readonly string[];
  flags: { readonly 'purge-data': boolean };
}

export function runLxcManager(args: LxcManagerArgs, context: ScriptContext): Promise<number> {
  return runGuestManager(context, {
    verb: args.command,
    ids: args.operands,
    unknown: notInManifest,
    newSession,
    status: statusTable,
    verbs: {
      'create-templates': createTemplates,
      create: (session, ctid) => createContainer(session, ctid, 'create'),
      converge: (session, ctid) => createContainer(session, ctid, 'converge'),
      start: startContainer,
      stop: stopContainer,
      restart: restartContainer,
      delete: (session, ctid) => deleteContainer(session, ctid, { purgeData: args.flags['purge-data'] }),
      sync: syncContainer,
    },
    // The bash ended every failed step with log_fatal: exit 1, whatever pct returned.
    failedCommandIsFatal: true,
  });
}
