// Where Phoenix is installed. Found from this module's own location by
// walking up to the directory that holds both package.json and lib/: the same
// answer whether the code runs from lib/ (the compiled modules the tests
// import) or bundled into a script under scripts/ (what operators run).
// Files that ship with the code (schemas, guest scripts, templates) are
// located from here, never relative to the running module.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'lib'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no Phoenix installation (package.json beside lib/) above ${start}`);
  }
}

export const PROJECT_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
