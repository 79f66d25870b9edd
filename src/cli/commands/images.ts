// Image commands: load, save, images, tag, rmi, history, import.
import { Command, Option } from 'commander';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError } from '../../errors.js';
import { familiar, parseConfig } from '../../store/images.js';
import type { ImageSummary, Store } from '../../store/store.js';
import { checkOutputPath, collect, eachTarget, toFileOrStdout, type Context } from '../context.js';
import { boolFilter, globMatch, matchLabels, parseFilters, type Filters } from '../filters.js';
import { goTime, humanSize, printRows, rfc3339, since, truncate } from '../format.js';
import { shortId } from '../../reference/digest.js';
import { HISTORY_NON_HUMAN_FORMAT, HISTORY_TABLE, IMAGES_DIGESTS_FORMAT, IMAGES_TABLE } from '../template/index.js';

interface ImageRow {
  repo: string;
  tag: string;
  digest: string;
  id: string;
  created: string;
  size: number;
}

const IMAGE_FILTERS = ['dangling', 'label', 'before', 'since', 'reference'] as const;

/** "name@sha256:…" → ["name", "sha256:…"] */
function splitDigest(ref: string): [string, string] {
  const at = ref.lastIndexOf('@');
  return [ref.slice(0, at), ref.slice(at + 1)];
}

/** docker's reference filter: the pattern against the familiar name with its tag or digest, or without. */
function referenceMatches(patterns: string[] | undefined, full: string, repo: string): boolean {
  return !patterns || patterns.some((p) => globMatch(p, full) || globMatch(p, repo));
}

/**
 * The rows docker lists for one image: one per repository:tag (a digest shown per tag with
 * --digests), a row per repository known only by digest, one <none> row for a dangling image;
 * none when the filters leave it out (docker's daemon and CLI logic, in one place).
 */
function imageRows(img: ImageSummary, filters: Filters, digests: boolean): ImageRow[] {
  const refs = filters.get('reference');
  const tags = img.names.map(familiar).filter((n) => referenceMatches(refs, n, n.slice(0, n.lastIndexOf(':'))));
  const byDigest = img.repoDigests.filter((d) => referenceMatches(refs, d, splitDigest(d)[0])).map(splitDigest);
  const base = { id: img.id, created: img.created, size: img.size };
  const dangling = boolFilter(filters, 'dangling');
  if (tags.length === 0 && byDigest.length === 0) {
    if (img.names.length > 0 || img.repoDigests.length > 0 || refs || dangling === false) return [];
    return [{ ...base, repo: '<none>', tag: '<none>', digest: '<none>' }];
  }
  if (dangling === true && tags.length > 0) return [];
  const rows: ImageRow[] = [];
  for (const n of tags) {
    const colon = n.lastIndexOf(':');
    const repo = n.slice(0, colon);
    const ds = digests ? byDigest.filter(([r]) => r === repo).map(([, d]) => d) : [];
    for (const digest of ds.length ? ds : ['<none>']) rows.push({ ...base, repo, tag: n.slice(colon + 1), digest });
  }
  for (const [repo, digest] of byDigest) {
    if (!rows.some((r) => r.repo === repo)) rows.push({ ...base, repo, tag: '<none>', digest: digests ? digest : '' });
  }
  return rows;
}

/** `images`: the stored images docker would list for these filters, newest (by config created) first. */
function listImages(store: Store, o: { all?: boolean; filter: string[]; digests?: boolean }, repo?: string): ImageRow[] {
  const filters = parseFilters(o.filter, IMAGE_FILTERS);
  // docker turns the REPOSITORY[:TAG] argument into one more reference filter.
  if (repo !== undefined) filters.set('reference', [...(filters.get('reference') ?? []), repo]);
  const createdOf = (key: 'before' | 'since') =>
    filters.get(key)?.map((ref) => {
      const img = store.images.lookup(ref);
      return Date.parse(parseConfig(img).created ?? img.created);
    });
  const before = createdOf('before');
  const since = createdOf('since');
  // Each date parsed once, not at every comparison of the sort.
  return store
    .listImages({ all: o.all })
    .map((img) => ({ img, t: Date.parse(img.created) }))
    .filter(({ img, t }) => (!before || before.every((b) => t < b)) && (!since || since.every((s) => t > s)) && matchLabels(filters, img.labels))
    .sort((a, b) => b.t - a.t)
    .flatMap(({ img }) => imageRows(img, filters, o.digests === true));
}

type HistoryRow = ReturnType<Store['history']>[number];

export function addImageCommands(program: Command, { io, withStore }: Context): void {
  program
    .command('load')
    .description('Load images from a docker-archive or OCI archive')
    .option('-i, --input <file>', 'read from a tar archive file, instead of STDIN')
    .option('--platform <os/arch[/variant]>', 'platform to load from a multi-platform archive')
    // docker's -q hides the progress bars and still names what was loaded; strata shows no
    // progress for load, so the output is the same with or without it.
    .option('-q, --quiet', 'no progress output (strata prints none for load)')
    .action(async (o: { input?: string; platform?: string }) => {
      const input = o.input ?? '-';
      if (input === '-' && process.stdin.isTTY) throw new InvalidInputError('requested load from stdin, but stdin is empty');
      await withStore(async (store) => {
        let file = input;
        let spooled: string | null = null;
        if (input === '-') {
          // Archives need random access: keep stdin in the store's tmp dir for the duration.
          spooled = `${store.root}/tmp/load-${process.pid}.tar`;
          await pipeline(process.stdin, createWriteStream(spooled, { highWaterMark: 1 << 20 }));
          file = spooled;
        }
        try {
          const loaded = await store.load(file, { platform: o.platform });
          for (const img of loaded) {
            if (img.names.length === 0) io.print(`Loaded image ID: ${img.id}`);
            for (const n of img.names) io.print(`Loaded image: ${familiar(n)}`);
          }
        } finally {
          if (spooled) await rm(spooled, { force: true });
        }
      });
    });

  program
    .command('save')
    .description('Save one or more images to a tar archive')
    .argument('<image...>')
    .option('-o, --output <file>', 'write to a file, instead of STDOUT')
    .addOption(new Option('--format <format>', 'archive format').choices(['docker', 'oci', 'docker-archive', 'oci-archive']).default('docker'))
    .action(async (refs: string[], o: { output?: string; format: string }) => {
      const format = o.format.startsWith('oci') ? 'oci' : 'docker';
      checkOutputPath(o.output, 'save');
      await withStore(async (store) => {
        for (const r of refs) store.getImage(r); // fail before creating the file
        await toFileOrStdout(o.output, 'save', (w) => store.save(refs, w, format));
      });
    });

  program
    .command('images')
    .description('List images')
    .argument('[repository[:tag]]')
    .option('-a, --all', 'show all images (default hides intermediate images)')
    .option('-q, --quiet', 'only show image IDs')
    .option('--no-trunc', "don't truncate output")
    .option('--digests', 'show digests')
    .option('-f, --filter <filter>', 'filter output based on conditions provided (dangling, label, before, since, reference)', collect, [] as string[])
    .option('--format <format>', 'pretty-print images using a Go template (json: one object per line)')
    .action(async (repo: string | undefined, o: { all?: boolean; quiet?: boolean; trunc: boolean; digests?: boolean; filter: string[]; format?: string }) => {
      await withStore(async (store) => {
        // docker fills DIGEST when it is shown: --digests, or a format that names it (and strata's json).
        const digests = o.digests === true || o.format === 'json' || (o.format ?? '').includes('{{.Digest}}');
        const rows = listImages(store, { ...o, digests }, repo);
        const id = (r: ImageRow) => (o.trunc ? shortId(r.id) : r.id);
        if (o.quiet) {
          for (const r of rows) io.print(id(r));
          return;
        }
        // Getters: a table computes only the columns it prints; json output still has every field.
        const data = rows.map((r) => ({
          Containers: 'N/A',
          get CreatedAt() {
            return goTime(r.created);
          },
          get CreatedSince() {
            return since(r.created);
          },
          Digest: r.digest,
          ID: id(r),
          Repository: r.repo,
          SharedSize: 'N/A',
          get Size() {
            return humanSize(r.size);
          },
          Tag: r.tag,
          UniqueSize: 'N/A',
          get VirtualSize() {
            return humanSize(r.size, 4);
          },
        }));
        printRows(io, o.format, data, { command: 'images', ...IMAGES_TABLE, ...(o.digests ? { defaultTable: IMAGES_DIGESTS_FORMAT } : {}) });
      });
    });

  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>')
    .argument('<target>')
    .action(async (src: string, dst: string) => {
      await withStore(async (store) => store.tag(src, dst));
    });

  program
    .command('rmi')
    .description('Remove one or more images')
    .argument('<image...>')
    .option('-f, --force', 'force removal of the image')
    .action(async (refs: string[], o: { force?: boolean }) => {
      await withStore((store) =>
        eachTarget(refs, async (ref) => {
          const r = await store.removeImage(ref, { force: o.force });
          for (const u of r.untagged) io.print(`Untagged: ${u}`);
          for (const d of r.deleted) io.print(`Deleted: ${d}`);
        }),
      );
    });

  program
    .command('history')
    .description('Show the history of an image')
    .argument('<image>')
    .option('--no-trunc', "don't truncate output")
    .option('-q, --quiet', 'only show image IDs')
    .option('-H, --human', 'print sizes and dates in human readable format (-H=false for bytes and RFC 3339)', true)
    .addOption(new Option('--no-human').hideHelp())
    .option('--format <format>', 'pretty-print history using a Go template (json: one object per line)')
    .action(async (ref: string, o: { trunc: boolean; quiet?: boolean; human: boolean; format?: string }) => {
      await withStore(async (store) => {
        const rows = store.history(ref);
        const id = (r: HistoryRow) => (r.id === '<missing>' || !o.trunc ? r.id : shortId(r.id));
        if (o.quiet) {
          for (const r of rows) io.print(id(r));
          return;
        }
        const data = rows.map((r) => ({
          ID: id(r),
          CreatedAt: rfc3339(r.created),
          CreatedSince: o.human ? since(r.created) : rfc3339(r.created),
          CreatedBy: o.trunc ? truncate(r.createdBy.replace(/\t/g, ' '), 45) : r.createdBy.replace(/\t/g, ' '),
          Size: o.human ? humanSize(r.size) : String(r.size),
          Comment: r.comment,
        }));
        printRows(io, o.format, data, { command: 'history', ...HISTORY_TABLE, ...(o.human ? {} : { defaultTable: HISTORY_NON_HUMAN_FORMAT }) });
      });
    });

  program
    .command('import')
    .description('Import the contents from a tarball to create a filesystem image')
    .argument('<file>', 'a tar archive (plain, gzip or zstd), or - for STDIN')
    .argument('[reference]')
    .option('-m, --message <message>', 'set commit message for imported image')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, …) to the image', collect, [] as string[])
    .action(async (file: string, ref: string | undefined, o: { message?: string; change: string[] }) => {
      await withStore(async (store) => io.print(await store.importTarball(file, ref, { message: o.message, changes: o.change })));
    });
}
