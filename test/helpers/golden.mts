// Golden files: the expected text lives in test/golden/<name>. Run the tests
// with UPDATE_GOLDEN=1 to (re)write them after a deliberate change, then
// review the diff like any other change.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';

const goldenDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'golden');

export function assertGolden(name: string, actual: string): void {
  const file = path.join(goldenDir, name);
  if (process.env.UPDATE_GOLDEN) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file)) assert.unreachable(`golden file ${name} is missing (run the tests with UPDATE_GOLDEN=1 once, then review it)`);
  assert.fixture(actual, fs.readFileSync(file, 'utf8'));
}
