#!/usr/bin/env node
// phoenix-global: the `phoenix` command on PATH. Like its bash original it
// only hands every argument to phoenix-cli; it imports it in-process rather
// than exec'ing it, so `phoenix` costs one Node start, not two.

await import('./phoenix-cli.mts');
