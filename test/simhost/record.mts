// The call log: one JSON object per line in <state>/calls.jsonl, appended
// with a single write on an O_APPEND descriptor so parallel callers never
// interleave inside a line. stdin is counted, never stored: scripts piped
// to `pct exec … bash -s` may carry secrets.

import fs from 'node:fs';

import { paths } from './state.mts';

export interface CallRecord {
  tool: string;
  argv: string[];
  exit: number;
  /** Wall time of the call in ms, injected latency included. */
  ms: number;
  /** Epoch ms when the call started (lets tests check what ran in parallel). */
  start: number;
  /** Bytes read from stdin, present only when the tool consumed stdin. */
  stdin_bytes?: number;
}

export function appendCall(root: string, record: CallRecord): void {
  fs.appendFileSync(paths(root).callsFile, `${JSON.stringify(record)}\n`);
}

export function readCalls(root: string): CallRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(paths(root).callsFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as CallRecord);
}
