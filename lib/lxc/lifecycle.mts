// lxc-manager's actions: the create sequence, in the bash's order, and the
// lifecycle verbs, as one idempotent pass per container.
//
// Every step first looks (one `pct config` per phase), then changes only what
// differs, and says what it changed; a container that already matches its
// manifest gets no mutating command at all. The steps Proxmox cannot answer
// for (features, application script, health checks) are kept in a lifecycle
// record (record.mts), so a run that failed half-way resumes where it stopped
// and a second run of an unchanged container runs none of them again.
//
// Dry-run: every mutating command and file write is printed instead; what a
// printed `pct create`/`clone`/`start` would have produced is assumed, so the
// rest of the plan can still be shown.
//
// The pieces: session.mts (what every action shares), create.mts with
// define.mts and inside.mts (the create sequence), verbs.mts, templates.mts.

export { SNAPSHOT_PRE_CONFIGURED, SNAPSHOT_FINAL_FORM, type LxcSession, newSession, type GuestView, inspect } from './session.mts';
export { type CreateMode, createContainer } from './create.mts';
export { startContainer, stopContainer, restartContainer, deleteContainer, syncContainer, statusTable } from './verbs.mts';
export { createTemplates } from './templates.mts';
