// Real inputs for the mutators, taken from the corpus archives (read-only, ../shared/corpus):
// small layer tars (uncompressed; bigger ones cut at an entry boundary) and every JSON document
// an image archive holds (index.json, manifests, configs, docker-save's manifest.json and
// repositories), each with the kind of document it is.
import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { readTar } from '../../src/archive/tar/reader.js';
import { paddingFor } from '../../src/archive/tar/header.js';
import { ArchiveIndex } from '../../src/image/archive-index.js';
import { corpusImage } from '../helpers/env.js';

export type JsonKind = 'index' | 'manifest' | 'config' | 'docker-manifest' | 'repositories' | 'oci-layout';

export interface JsonSample {
  kind: JsonKind;
  text: string;
}

/** Layer tars are cut to about this size, so one input stays cheap to feed. */
const LAYER_MAX = 48 << 10;

const OCI = ['edge.oci.tar', 'xattr.oci.tar', 'deep.oci.tar', 'multiarch.oci.tar', 'busybox.oci.tar'];
const DOCKER = ['busybox.docker.tar', 'edge.docker.tar'];

/** The tar cut after its last whole entry that ends within LAYER_MAX, with an end marker. */
async function cutTar(tar: Buffer): Promise<Buffer> {
  if (tar.length <= LAYER_MAX) return tar;
  let end = 0;
  for await (const e of readTar(Readable.from([tar]))) {
    const stored = e.header.type === 'file' ? e.header.size : 0;
    const next = e.offset + stored + paddingFor(stored);
    if (next > LAYER_MAX) break;
    end = next;
  }
  return Buffer.concat([tar.subarray(0, end), Buffer.alloc(1024)]);
}

function kindOf(doc: unknown): JsonKind | null {
  if (typeof doc !== 'object' || doc === null) return null;
  if (Array.isArray(doc)) return 'docker-manifest';
  const o = doc as Record<string, unknown>;
  if ('manifests' in o) return 'index';
  if ('layers' in o) return 'manifest';
  if ('rootfs' in o) return 'config';
  if ('imageLayoutVersion' in o) return 'oci-layout';
  return 'repositories';
}

const cached = new Map<string, Promise<{ layers: Buffer[]; json: JsonSample[] }>>();

/** Layer tars (from the OCI archives) and JSON documents (from all of them; docker-save archives are big to scan). */
export function corpusSamples(withDocker = true): Promise<{ layers: Buffer[]; json: JsonSample[] }> {
  const key = String(withDocker);
  let p = cached.get(key);
  if (p === undefined) {
    p = load(withDocker ? [...OCI, ...DOCKER] : OCI);
    cached.set(key, p);
  }
  return p;
}

async function load(files: string[]): Promise<{ layers: Buffer[]; json: JsonSample[] }> {
  const layers: Buffer[] = [];
  const json: JsonSample[] = [];
  const seen = new Set<string>();
  const addJson = (text: string) => {
    if (seen.has(text)) return;
    try {
      const kind = kindOf(JSON.parse(text));
      if (kind) {
        seen.add(text);
        json.push({ kind, text });
      }
    } catch {
      // not JSON: a layer blob
    }
  };
  for (const file of files) {
    const index = await ArchiveIndex.build(corpusImage(file));
    for (const name of index.names()) {
      const m = index.find(name);
      if (m === undefined) continue;
      const head = await index.readHead(m, 2);
      if (head[0] === 0x1f && head[1] === 0x8b) {
        // deep's 130 layers are alike: a handful of them is enough
        if (file === 'deep.oci.tar' && layers.length > 40) continue;
        if (m.size > 4 << 20) continue;
        layers.push(await cutTar(gunzipSync(await index.readFile(name))));
      } else if (m.size < 1 << 20 && !name.endsWith('layer.tar')) {
        addJson((await index.readFile(name)).toString('utf8'));
      }
    }
  }
  return { layers, json };
}
