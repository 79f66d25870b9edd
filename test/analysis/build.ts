// Images made on purpose for the analysis tests: a base layer imported from a directory, then
// one committed layer per step (a container whose mounted root the step changes), so every
// file each layer adds, overwrites or deletes, and its bytes, is known in advance.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Store } from '../../src/index.js';

export interface Step {
  /** What the history will say made the layer (the container's command). */
  cmd: string;
  change(root: string): void;
}

/** Write `bytes` bytes of one repeated byte at path (parents made). */
export function writeBytes(path: string, bytes: number, fill = 0x61): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.alloc(bytes, fill));
}

/** A one-layer image whose root holds files: relative path -> size in bytes. */
export async function importBase(store: Store, work: string, ref: string, files: Record<string, number>): Promise<string> {
  const dir = mkdtempSync(join(work, 'base-'));
  for (const [p, n] of Object.entries(files)) writeBytes(join(dir, p), n);
  const tar = `${dir}.tar`;
  const r = spawnSync('tar', ['-C', dir, '--numeric-owner', '-cf', tar, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr.toString()}`);
  try {
    return await store.importTarball(tar, ref);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(tar, { force: true });
  }
}

/** Commit one layer per step on top of `from`; the last commit is named `ref`. */
export async function commitSteps(store: Store, from: string, ref: string, steps: Step[]): Promise<string> {
  let image = from;
  for (const [i, step] of steps.entries()) {
    const c = await store.createContainer(image, { cmd: [step.cmd] });
    try {
      const root = await store.mount(c.id);
      try {
        step.change(root);
      } finally {
        await store.unmount(c.id);
      }
      image = await store.commit(c.id, i === steps.length - 1 ? ref : undefined);
    } finally {
      await store.removeContainer(c.id, { force: true });
    }
  }
  return image;
}
