// Layer directories on their way out. A removal renames a layer's directory to
// `<id>-removing-<pid>-<starttime>` and then deletes it, so a crash half way leaves a name no
// layer can have, and whoever finds it can tell (as the store does with its rows' owners)
// whether its remover still runs, and is left to finish, or died, and is finished for it.
import { processAlive, processIdentity } from '../../sys/process.js';

export const REMOVING = '-removing';

// `<id>-removing` alone is what removals made before the remover was part of the name.
const DOOMED = /^(.+)-removing(?:-([0-9]+)-([0-9]+))?$/;

/** Where this process moves a layer's directory (or file) to delete it. */
export function doomedPath(path: string): string {
  return `${path}${REMOVING}-${processIdentity().replace(':', '-')}`;
}

/** The layer and the remover ("pid:starttime", null when the name does not say) of a doomed name; null for any other name. */
export function parseDoomed(name: string): { layer: string; owner: string | null } | null {
  const m = DOOMED.exec(name);
  if (!m) return null;
  return { layer: m[1]!, owner: m[2] ? `${m[2]}:${m[3]}` : null };
}

/** A doomed name whose remover no longer runs: its deletion is for whoever finds it to finish. */
export function abandoned(name: string): boolean {
  const d = parseDoomed(name);
  return d !== null && !processAlive(d.owner);
}
