// `pveum` (Proxmox VE 8's user manager) on <state>/pve/user.cfg, in PVE's
// own format: `user:<userid>:<enable>:<expire>:<firstname>:<lastname>:<email>:<comment>:<keys>:`
// lines, then `acl:<propagate>:<path>:<users/groups>:<roles>:` lines. A node
// whose file is missing has what a fresh install has: root@pam and no ACL.
// Answered: `user list`, `user add`, `acl list`, `acl modify` (and the old
// `useradd` / `aclmod` aliases), with PVE's option parsing (test/simhost/args.mts)
// and its refusals: an existing user (`create user failed: …`), an unknown
// realm, user or role, a malformed user id.

import fs from 'node:fs';
import path from 'node:path';

import { parseCommand, type CommandSpec, type OptSpec } from '../args.mts';
import { atomicWrite, ToolExit, withStateLock } from '../state.mts';
import type { HostToolContext } from './context.mts';

const FRESH = 'user:root@pam:1:0:::root@pam::\n';

/** PVE 8's built-in roles. */
const ROLES = ['Administrator', 'NoAccess', 'PVEAdmin', 'PVEAuditor', 'PVEDatastoreAdmin', 'PVEDatastoreUser', 'PVEMappingAdmin', 'PVEMappingUser', 'PVEPoolAdmin', 'PVEPoolUser', 'PVESDNAdmin', 'PVESDNUser', 'PVESysAdmin', 'PVETemplateUser', 'PVEUserAdmin', 'PVEVMAdmin', 'PVEVMUser'];
const REALMS = ['pam', 'pve'];

interface UserEntry {
  fields: string[];
}

interface UserCfg {
  users: UserEntry[];
  acls: Array<{ propagate: string; path: string; ugids: string[]; roles: string[] }>;
  other: string[];
}

function cfgFile(root: string): string {
  return path.join(root, 'pve', 'user.cfg');
}

function loadCfg(root: string): UserCfg {
  const file = cfgFile(root);
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : FRESH;
  const cfg: UserCfg = { users: [], acls: [], other: [] };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(':');
    if (fields[0] === 'user') cfg.users.push({ fields: fields.slice(1) });
    else if (fields[0] === 'acl') cfg.acls.push({ propagate: fields[1] ?? '1', path: fields[2] ?? '/', ugids: (fields[3] ?? '').split(',').filter(Boolean), roles: (fields[4] ?? '').split(',').filter(Boolean) });
    else cfg.other.push(line);
  }
  return cfg;
}

function saveCfg(root: string, cfg: UserCfg): void {
  const users = cfg.users.map((u) => `user:${u.fields.join(':')}\n`).join('');
  const acls = cfg.acls.map((a) => `acl:${a.propagate}:${a.path}:${a.ugids.join(',')}:${a.roles.join(',')}:\n`).join('');
  const other = cfg.other.map((line) => `${line}\n`).join('');
  fs.mkdirSync(path.dirname(cfgFile(root)), { recursive: true });
  atomicWrite(cfgFile(root), `${users}\n${other}${other ? '\n' : ''}${acls}`, 0o640);
}

const userIdFormat = (v: string): string | undefined => (/^[^\s:/@]{1,60}@[A-Za-z][A-Za-z0-9.\-_]+$/.test(v) ? undefined : 'value does not look like a valid user ID');
const str: OptSpec = { type: 'string' };
const outputFormat: OptSpec = { type: 'string', enum: ['text', 'json', 'json-pretty', 'yaml'] };

const SPECS: Record<string, CommandSpec> = {
  'user list': { name: 'pveum user list', args: [], param: (n) => ({ 'output-format': outputFormat, enabled: { type: 'boolean' }, full: { type: 'boolean' }, noborder: { type: 'boolean' }, noheader: { type: 'boolean' } } as Record<string, OptSpec>)[n] },
  'user add': {
    name: 'pveum user add',
    args: ['userid'],
    param: (n) => ({ userid: { type: 'string', format: userIdFormat }, comment: str, email: str, enable: { type: 'boolean' }, expire: { type: 'integer' }, firstname: str, lastname: str, groups: str, keys: str, password: str } as Record<string, OptSpec>)[n],
  },
  'acl list': { name: 'pveum acl list', args: [], param: (n) => ({ 'output-format': outputFormat, noborder: { type: 'boolean' }, noheader: { type: 'boolean' } } as Record<string, OptSpec>)[n] },
  'acl modify': {
    name: 'pveum acl modify',
    args: ['path'],
    param: (n) => ({ path: str, roles: str, users: str, groups: str, tokens: str, propagate: { type: 'boolean' }, delete: { type: 'boolean' } } as Record<string, OptSpec>)[n],
  },
};

const ALIASES: Record<string, string> = { useradd: 'user add', aclmod: 'acl modify' };

function print(ctx: HostToolContext, format: string | undefined, rows: Array<Record<string, unknown>>, columns: string[]): void {
  if (format === 'json') ctx.out(`${JSON.stringify(rows)}\n`);
  else if (format === 'json-pretty') ctx.out(`${JSON.stringify(rows, null, 3)}\n`);
  else {
    // A plain table; PVE's box drawing is not reproduced.
    ctx.out(`${columns.join('\t')}\n`);
    for (const row of rows) ctx.out(`${columns.map((c) => String(row[c] ?? '')).join('\t')}\n`);
  }
}

export function runPveum(ctx: HostToolContext): void {
  const [first = '', second = '', ...rest] = ctx.argv;
  const alias = ALIASES[first];
  const key = alias ?? `${first} ${second}`;
  const argv = alias === undefined ? rest : ctx.argv.slice(1);
  const spec = SPECS[key];
  if (!spec) throw new ToolExit(255, `ERROR: unknown command 'pveum ${ctx.argv.slice(0, 2).join(' ')}'\nUSAGE: pveum <COMMAND> [ARGS] [OPTIONS]\n`);
  const parsed = parseCommand(spec, argv);
  withStateLock(ctx.root, () => {
    const cfg = loadCfg(ctx.root);
    if (key === 'user list') {
      const rows = cfg.users.map((u) => {
        const [userid = '', enable = '1', expire = '0', firstname = '', lastname = '', email = '', comment = ''] = u.fields;
        const row: Record<string, unknown> = { userid, enable: Number(enable), expire: Number(expire), 'realm-type': userid.split('@')[1] ?? '', tokens: [] };
        for (const [k, v] of Object.entries({ firstname, lastname, email, comment })) if (v !== '') row[k] = v;
        return row;
      });
      print(ctx, parsed.opts['output-format'], rows, ['userid', 'enable', 'expire', 'firstname', 'lastname', 'email', 'comment']);
      return;
    }
    if (key === 'acl list') {
      const rows = cfg.acls.flatMap((a) => a.ugids.flatMap((ugid) => a.roles.map((roleid) => ({ path: a.path, roleid, type: ugid.startsWith('@') ? 'group' : ugid.includes('!') ? 'token' : 'user', ugid: ugid.replace(/^@/, ''), propagate: Number(a.propagate) }))));
      print(ctx, parsed.opts['output-format'], rows, ['path', 'ugid', 'type', 'roleid', 'propagate']);
      return;
    }
    if (key === 'user add') {
      const userid = parsed.args.userid!;
      const realm = userid.split('@')[1]!;
      if (cfg.users.some((u) => u.fields[0] === userid)) throw new ToolExit(255, `create user failed: user '${userid}' already exists\n`);
      if (!REALMS.includes(realm)) throw new ToolExit(255, `create user failed: domain '${realm}' does not exist\n`);
      const o = parsed.opts;
      cfg.users.push({ fields: [userid, o.enable ?? '1', o.expire ?? '0', o.firstname ?? '', o.lastname ?? '', o.email ?? '', o.comment ?? '', o.keys ?? '', ''] });
      saveCfg(ctx.root, cfg);
      return;
    }
    // acl modify
    const o = parsed.opts;
    if (o.roles === undefined) throw new ToolExit(255, `400 Parameter verification failed.\nroles: property is missing and it is not optional\npveum acl modify <path> --roles <string> [OPTIONS]\n`);
    const roles = o.roles.split(/[,;\s]+/).filter(Boolean);
    for (const role of roles) if (!ROLES.includes(role)) throw new ToolExit(255, `role '${role}' does not exist\n`);
    const users = (o.users ?? '').split(/[,;\s]+/).filter(Boolean);
    for (const user of users) if (!cfg.users.some((u) => u.fields[0] === user)) throw new ToolExit(255, `user '${user}' does not exist\n`);
    const propagate = o.propagate ?? '1';
    for (const user of users) {
      for (const role of roles) {
        let acl = cfg.acls.find((a) => a.path === parsed.args.path && a.propagate === propagate && a.roles.length === 1 && a.roles[0] === role);
        if (o.delete === '1') {
          if (acl) acl.ugids = acl.ugids.filter((u) => u !== user);
          continue;
        }
        if (!acl) {
          acl = { propagate, path: parsed.args.path!, ugids: [], roles: [role] };
          cfg.acls.push(acl);
        }
        if (!acl.ugids.includes(user)) acl.ugids.push(user);
      }
    }
    cfg.acls = cfg.acls.filter((a) => a.ugids.length > 0);
    saveCfg(ctx.root, cfg);
  });
}
