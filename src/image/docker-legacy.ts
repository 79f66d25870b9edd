// Archives from Docker before 1.10 have no manifest.json and no image config: only `repositories`
// and a chain of v1 layer directories (<id>/json naming its parent, <id>/layer.tar). Like
// `docker load`, we rebuild a config from the top layer's json, hashing every layer for its diffID.
import { InvalidInputError } from '../errors.js';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompress } from '../archive/compression.js';
import { normalizeName } from '../reference/reference.js';
import type { ArchiveIndex } from './archive-index.js';
import { DigestStream } from './digest.js';
import { DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD, sniffCompression } from './mediatypes.js';
import type { ImageSource, LayerSource } from './source.js';
import { parseDockerRepositories, type HistoryEntry } from './types.js';

const V1_ID = /^[0-9a-f]{64}$/;
// Fields of a v1 layer json that describe the layer, not the image (dropped as Docker does).
const LAYER_ONLY = new Set(['id', 'parent', 'Size', 'parent_id', 'layer_id', 'throwaway']);

interface V1Json {
  id?: unknown;
  parent?: unknown;
  created?: unknown;
  author?: unknown;
  comment?: unknown;
  container_config?: { Cmd?: unknown };
  [key: string]: unknown;
}

async function readV1Json(index: ArchiveIndex, id: string): Promise<V1Json> {
  const name = `${id}/json`;
  if (!index.has(name)) throw new InvalidInputError(`${index.path}: legacy layer ${id} has no json file`);
  try {
    const v = JSON.parse((await index.readFile(name)).toString()) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidInputError('not an object');
    return v as V1Json;
  } catch (e) {
    throw new InvalidInputError(`${index.path}: ${name} is not a valid layer json: ${(e as Error).message}`);
  }
}

async function diffIDOf(open: () => Promise<Readable>, what: string): Promise<string> {
  const hasher = new DigestStream({ what });
  const drain = async (src: AsyncIterable<Buffer>) => {
    for await (const _chunk of src) {
      // only the digest is wanted
    }
  };
  const raw = await open();
  await pipeline(await decompress(raw), hasher, drain);
  return hasher.digest;
}

/** One image per distinct top layer named in `repositories`. */
export async function readLegacyDockerArchive(index: ArchiveIndex): Promise<ImageSource[]> {
  const repos = parseDockerRepositories(await index.readFile('repositories'), `${index.path}: repositories`);
  const byTop = new Map<string, string[]>();
  for (const [repo, tags] of Object.entries(repos)) {
    for (const [tag, id] of Object.entries(tags)) {
      if (!V1_ID.test(id)) throw new InvalidInputError(`${index.path}: repositories: invalid layer id ${JSON.stringify(id)} for ${repo}:${tag}`);
      const ref = normalizeName(`${repo}:${tag}`);
      const names = byTop.get(id);
      if (names) names.push(ref);
      else byTop.set(id, [ref]);
    }
  }
  if (byTop.size === 0) throw new InvalidInputError(`${index.path}: repositories names no images`);
  const out: ImageSource[] = [];
  for (const [top, names] of byTop) out.push(await legacyImage(index, top, names));
  return out;
}

async function legacyImage(index: ArchiveIndex, top: string, names: string[]): Promise<ImageSource> {
  const chain: { id: string; json: V1Json }[] = [];
  const seen = new Set<string>();
  for (let id: string | undefined = top; id !== undefined && id !== ''; ) {
    if (seen.has(id)) throw new InvalidInputError(`${index.path}: legacy layer chain loops at ${id}`);
    seen.add(id);
    const json = await readV1Json(index, id);
    chain.unshift({ id, json });
    const parent = json.parent;
    if (parent !== undefined && (typeof parent !== 'string' || (parent !== '' && !V1_ID.test(parent)))) {
      throw new InvalidInputError(`${index.path}: ${id}/json has an invalid parent ${JSON.stringify(parent)}`);
    }
    id = parent as string | undefined;
  }

  const layers: LayerSource[] = [];
  const diffIDs: string[] = [];
  const history: HistoryEntry[] = [];
  for (const { id, json } of chain) {
    const member = index.find(`${id}/layer.tar`);
    if (member === undefined) throw new InvalidInputError(`${index.path}: legacy layer ${id}/layer.tar is missing from the archive`);
    const compression = sniffCompression(await index.readHead(member, 4));
    const mediaType = { none: DOCKER_LAYER, gzip: DOCKER_LAYER_GZIP, zstd: DOCKER_LAYER_ZSTD }[compression];
    const open = async () => index.openStream(member);
    diffIDs.push(await diffIDOf(open, `${id}/layer.tar`));
    layers.push({ mediaType, size: member.size, open });
    const cmd = json.container_config?.Cmd;
    const h: HistoryEntry = {};
    if (typeof json.created === 'string') h.created = json.created;
    if (typeof json.author === 'string' && json.author !== '') h.author = json.author;
    h.created_by = Array.isArray(cmd) ? cmd.join(' ') : '';
    if (typeof json.comment === 'string' && json.comment !== '') h.comment = json.comment;
    history.push(h);
  }

  const config: Record<string, unknown> = {};
  const topJson = chain[chain.length - 1].json;
  // Sorted keys, as Go writes a map: the same archive always gives the same image ID.
  const fields = { ...topJson, rootfs: { type: 'layers', diff_ids: diffIDs }, history };
  for (const k of Object.keys(fields).sort()) if (!LAYER_ONLY.has(k)) config[k] = fields[k as keyof typeof fields];
  // v1 images older than the architecture field came from Docker when it ran only on linux/amd64.
  if (typeof config.os !== 'string') config.os = 'linux';
  if (typeof config.architecture !== 'string') config.architecture = 'amd64';
  return { config: Buffer.from(JSON.stringify(config)), layers, names };
}
