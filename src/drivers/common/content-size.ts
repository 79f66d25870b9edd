// The bytes a layer directory holds, counted as Docker's layered drivers count a layer's size
// (pkg/directory.Size, which applyLayer matches for their layers): every non-directory's length, so a symlink counts its target's length,
// each inode once (hard links); whiteouts (0/0 devices) count 0.
import { lstat, readdir } from 'node:fs/promises';

export async function contentSize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  // Names are raw bytes (layer contents need not be UTF-8), so paths are Buffers here.
  const stack: Buffer[] = [Buffer.from(dir)];
  const slash = Buffer.from('/');
  while (stack.length > 0) {
    const d = stack.pop() as Buffer;
    for (const name of await readdir(d, { encoding: 'buffer' })) {
      const p = Buffer.concat([d, slash, name]);
      const st = await lstat(p, { bigint: true });
      if (st.isDirectory()) {
        stack.push(p);
        continue;
      }
      if (st.size === 0n) continue;
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += Number(st.size);
    }
  }
  return total;
}
