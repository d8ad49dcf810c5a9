// Registers the programs the simulator emulates inside guests (see
// GuestProgram in ../guestfs.mts). pct and qm import this module once; each
// program module fills guestPrograms[<name>] when imported.
import './step.mts';
import './docker.mts';

export {};
import './packages.mts';
import './ids.mts';
import './nginx.mts';
