// Image commands: load, save, images, tag, rmi, history, import.
import { Command, Option } from 'commander';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError } from '../../errors.js';
import { familiar } from '../../store/images.js';
import type { ImageSummary } from '../../store/store.js';
import { eachTarget, toFileOrStdout, type Context, type Output } from '../context.js';
import { humanSize, since, table, truncate } from '../format.js';
import { shortId } from '../../reference/digest.js';
import { formatRows, HISTORY_TABLE, IMAGES_TABLE } from '../template/index.js';

interface ImageRow {
  repo: string;
  tag: string;
  digest: string;
  id: string;
  created: string;
  size: number;
}

/** "name@sha256:…" → ["name", "sha256:…"] */
function splitDigest(ref: string): [string, string] {
  const at = ref.lastIndexOf('@');
  return [ref.slice(0, at), ref.slice(at + 1)];
}

/** One row per repository:tag as docker lists them; a repository known only by digest shows tag <none>. */
function imageRows(img: ImageSummary): ImageRow[] {
  const digests = new Map(img.repoDigests.map(splitDigest));
  const rows: ImageRow[] = [];
  const base = { id: img.id, created: img.created, size: img.size };
  for (const n of img.names.map(familiar)) {
    const colon = n.lastIndexOf(':');
    const repo = n.slice(0, colon);
    rows.push({ ...base, repo, tag: n.slice(colon + 1), digest: digests.get(repo) ?? '<none>' });
  }
  for (const [repo, digest] of digests) if (!rows.some((r) => r.repo === repo)) rows.push({ ...base, repo, tag: '<none>', digest });
  if (rows.length === 0) rows.push({ ...base, repo: '<none>', tag: '<none>', digest: '<none>' });
  return rows;
}

/** `images --format`: docker's templates (`table …`, `{{.Repository}}:{{.Tag}}`), or `json` for one object per line as docker 23+. */
function printImagesFormatted(io: Output, format: string, rows: ImageRow[], trunc: boolean): void {
  const data = rows.map((r) => ({
    Containers: 'N/A',
    CreatedAt: r.created,
    CreatedSince: since(r.created),
    Digest: r.digest,
    ID: trunc ? shortId(r.id) : r.id,
    Repository: r.repo,
    SharedSize: 'N/A',
    Size: humanSize(r.size),
    Tag: r.tag,
    UniqueSize: 'N/A',
    VirtualSize: humanSize(r.size),
  }));
  if (format === 'json') for (const d of data) io.print(JSON.stringify(d));
  else io.out.write(formatRows(data, format, { command: 'images', ...IMAGES_TABLE }));
}

type HistoryRow = { id: string; created: string; createdBy: string; size: number; comment: string };

/** `history --format`: docker's templates, or `json` for one object per line. */
function printHistoryFormatted(io: Output, format: string, rows: HistoryRow[], human: boolean): void {
  const data = rows.map((r) => ({
    ID: r.id,
    CreatedAt: r.created,
    CreatedSince: human ? since(r.created) : r.created,
    CreatedBy: r.createdBy,
    Size: human ? humanSize(r.size) : String(r.size),
    Comment: r.comment,
  }));
  if (format === 'json') for (const d of data) io.print(JSON.stringify(d));
  else io.out.write(formatRows(data, format, { command: 'history', ...HISTORY_TABLE }));
}

/** docker's non-human CREATED column: RFC 3339 with the local offset, seconds precision. */
function rfc3339(iso: string): string {
  const t = new Date(iso);
  if (!Number.isFinite(t.getTime())) return iso;
  const off = -t.getTimezoneOffset();
  const local = new Date(t.getTime() + off * 60000).toISOString().slice(0, 19);
  if (off === 0) return `${local}Z`;
  const abs = Math.abs(off);
  return `${local}${off < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

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
      await withStore(async (store) => {
        for (const r of refs) store.getImage(r); // fail before creating the file
        await toFileOrStdout(o.output, 'save', (w) => store.save(refs, w, format));
      });
    });

  program
    .command('images')
    .alias('image ls')
    .description('List images')
    .argument('[repository]')
    .option('-a, --all', 'show all images (default hides intermediate images)')
    .option('-q, --quiet', 'only show image IDs')
    .option('--no-trunc', "don't truncate output")
    .option('--digests', 'show digests')
    .option('--format <format>', 'json for one JSON object per image')
    .action(async (repo: string | undefined, o: { all?: boolean; quiet?: boolean; trunc: boolean; digests?: boolean; format?: string }) => {
      await withStore(async (store) => {
        const wanted = repo === undefined ? undefined : familiar(`${repo}:x`).replace(/:x$/, '');
        const rows = store
          .listImages({ all: o.all })
          .flatMap(imageRows)
          .filter((r) => repo === undefined || r.repo === repo || r.repo === wanted);
        const id = (r: ImageRow) => (o.trunc ? shortId(r.id) : r.id);
        if (o.quiet) {
          for (const i of new Set(rows.map(id))) io.print(i);
          return;
        }
        if (o.format) return printImagesFormatted(io, o.format, rows, o.trunc);
        const header = ['REPOSITORY', 'TAG', ...(o.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
        io.out.write(table(header, rows.map((r) => [r.repo, r.tag, ...(o.digests ? [r.digest] : []), id(r), since(r.created), humanSize(r.size)])));
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
    .option('--format <format>', 'json for one JSON object per line')
    .action(async (ref: string, o: { trunc: boolean; quiet?: boolean; human: boolean; format?: string }) => {
      await withStore(async (store) => {
        const rows = store.history(ref);
        if (o.quiet) {
          for (const r of rows) io.print(r.id === '<missing>' || !o.trunc ? r.id : shortId(r.id));
          return;
        }
        if (o.format) return printHistoryFormatted(io, o.format, rows, o.human);
        io.out.write(
          table(
            ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
            rows.map((r) => [
              r.id === '<missing>' || !o.trunc ? r.id : shortId(r.id),
              o.human ? since(r.created) : rfc3339(r.created),
              o.trunc ? truncate(r.createdBy.replace(/\s+/g, ' '), 45) : r.createdBy,
              o.human ? humanSize(r.size) : String(r.size),
              r.comment,
            ]),
          ),
        );
      });
    });

  program
    .command('import')
    .description('Import the contents from a tarball to create a filesystem image')
    .argument('<file>', 'a tar archive (plain, gzip or zstd), or - for STDIN')
    .argument('[reference]')
    .option('-m, --message <message>', 'set commit message for imported image')
    .action(async (file: string, ref: string | undefined, o: { message?: string }) => {
      await withStore(async (store) => io.print(await store.importTarball(file, ref, { message: o.message })));
    });
}
