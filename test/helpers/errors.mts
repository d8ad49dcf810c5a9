// Asserting that a call throws a particular typed error, and getting it back
// to check its message, pointer or exit code.

import * as assert from 'uvu/assert';
import { ConfigError } from '../../lib/core/errors.mts';

export function expectConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ConfigError);
    return err as ConfigError;
  }
  assert.unreachable('expected a ConfigError');
  throw new Error('unreachable');
}
