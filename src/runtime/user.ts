// `-u`/`USER` resolved the way Docker resolves it: through the container's own /etc/passwd and
// /etc/group (read inside the root, never following a symlink out of it), so `nginx`, `1000`,
// `www-data:adm` and `1000:1000` mean what they mean inside the image, not on the host.
import { readFile } from 'node:fs/promises';
import { resolveInRoot } from '../archive/rootpath.js';
import { InvalidInputError } from '../errors.js';

export interface ExecUser {
  uid: number;
  gid: number;
  /** Supplementary groups: every group of /etc/group that lists the user by name. */
  additionalGids: number[];
  /** Home directory from /etc/passwd ("/" when the user has no entry), for HOME. */
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

async function readInRoot(root: string, path: string): Promise<string> {
  try {
    return await readFile(await resolveInRoot(root, path), 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return '';
    throw err;
  }
}

const ID = /^\d+$/;
/** uid/gid values that fit the kernel's 32-bit ids, minus the (uid_t)-1 "no change" value. */
const MAX_ID = 2 ** 32 - 2;

function parseId(s: string): number | null {
  if (!ID.test(s)) return null;
  const n = Number(s);
  return n <= MAX_ID ? n : null;
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === null || gid === null) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5]! });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const gid = parseId(f[2]!);
    if (gid === null) continue;
    out.push({ name: f[0]!, gid, members: f[3] ? f[3].split(',').filter(Boolean) : [] });
  }
  return out;
}

/**
 * Resolve `spec` ("", "name", "uid", "name:group", "uid:gid", …) against the root's files.
 * A numeric id without an entry is allowed (Docker runs it with gid 0 and HOME=/); a name that
 * no entry has is an error, with Docker's wording.
 */
export async function resolveUser(root: string, spec: string): Promise<ExecUser> {
  const [userPart, groupPart] = spec.includes(':') ? [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)] : [spec, undefined];
  const passwd = parsePasswd(await readInRoot(root, '/etc/passwd'));
  const groups = parseGroup(await readInRoot(root, '/etc/group'));

  const wantUser = userPart === '' ? '0' : userPart;
  const uidNum = parseId(wantUser);
  const entry = uidNum !== null ? passwd.find((p) => p.uid === uidNum) : passwd.find((p) => p.name === wantUser);
  if (!entry && uidNum === null) {
    if (ID.test(wantUser)) throw new InvalidInputError(`uids and gids must be in range 0-${MAX_ID}`);
    throw new InvalidInputError(`unable to find user ${wantUser}: no matching entries in passwd file`);
  }
  const uid = entry ? entry.uid : uidNum!;
  let gid = entry ? entry.gid : 0;
  if (groupPart !== undefined && groupPart !== '') {
    const gidNum = parseId(groupPart);
    if (gidNum !== null) gid = gidNum;
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) {
        if (ID.test(groupPart)) throw new InvalidInputError(`uids and gids must be in range 0-${MAX_ID}`);
        throw new InvalidInputError(`unable to find group ${groupPart}: no matching entries in group file`);
      }
      gid = g.gid;
    }
  }
  const additionalGids = entry ? groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid) : [];
  return { uid, gid, additionalGids: [...new Set(additionalGids)], home: entry?.home || '/' };
}
