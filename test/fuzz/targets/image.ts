// Target: manifest, index, config and docker-save JSON parsing (src/image/types.ts) and what the
// archive reader does with a parsed document (src/image/platform.ts, mediatypes.ts): picking a
// platform from an index, telling a layer's compression. Inputs are the corpus images' own
// documents with JSON values replaced, removed or retyped, and their text byte-mutated.
// Clean error: an Error of our own (not an engine TypeError/RangeError).
import fc from 'fast-check';
import { isConfigMediaType, isLayerMediaType, layerCompressionOf } from '../../../src/image/mediatypes.js';
import { hostPlatform, normalizePlatform, parsePlatform, selectManifest } from '../../../src/image/platform.js';
import { parseDockerManifest, parseDockerRepositories, parseImageConfig, parseIndex, parseManifest } from '../../../src/image/types.js';
import { corpusSamples, type JsonKind } from '../corpus.js';
import { mutatedBytes } from '../mutate.js';
import { isOwnError, type FuzzTarget } from '../target.js';

export interface ImageInput {
  kind: JsonKind;
  text: string;
}

type Edit = { at: number; op: 'replace' | 'delete' | 'wrap'; value: unknown };

/** Every container and value in doc, parents first: [holder, key] pairs. */
function slots(doc: unknown): [Record<string, unknown> | unknown[], string | number][] {
  const out: [Record<string, unknown> | unknown[], string | number][] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push([v, i]);
        walk(x);
      });
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        out.push([v as Record<string, unknown>, k]);
        walk(x);
      }
    }
  };
  walk(doc);
  return out;
}

function edit(text: string, edits: Edit[]): string {
  const doc = JSON.parse(text) as unknown;
  for (const e of edits) {
    const all = slots(doc);
    if (all.length === 0) break;
    const [holder, key] = all[e.at % all.length]!;
    const h = holder as Record<string | number, unknown>;
    if (e.op === 'delete') {
      if (Array.isArray(holder)) holder.splice(key as number, 1);
      else delete h[key];
    } else if (e.op === 'wrap') h[key] = [h[key]];
    else h[key] = structuredClone(e.value); // a copy: constants are shared between inputs
  }
  return JSON.stringify(doc);
}

const PARSERS: Record<JsonKind, (text: string) => void> = {
  index: (t) => {
    const idx = parseIndex(t);
    for (const wanted of [hostPlatform(), parsePlatform('linux/arm64/v8'), parsePlatform('linux/arm')]) {
      try {
        selectManifest(idx.manifests, wanted);
      } catch (err) {
        if (!(isOwnError(err) && /^no image for platform|lists no manifests/.test(err.message))) throw err;
      }
    }
    for (const m of idx.manifests) if (m.platform !== undefined) normalizePlatform(m.platform);
  },
  manifest: (t) => {
    const m = parseManifest(t);
    isConfigMediaType(m.config.mediaType);
    for (const l of m.layers) if (isLayerMediaType(l.mediaType)) layerCompressionOf(l.mediaType);
  },
  config: (t) => void parseImageConfig(t),
  'docker-manifest': (t) => void parseDockerManifest(t),
  repositories: (t) => void parseDockerRepositories(t),
  'oci-layout': (t) => void parseIndex(t),
};

const KINDS = Object.keys(PARSERS) as JsonKind[];

export async function make(): Promise<FuzzTarget<ImageInput>> {
  const { json } = await corpusSamples();
  const texts = json.map((j) => Buffer.from(j.text));
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(null, 2, '2', -1, 1e300, 2 ** 53, 0.5, '', [], {}, 'sha256:', 'sha256:' + 'a'.repeat(64), 'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json', { os: 'linux' }, { architecture: 1, os: [] }),
  );
  const editsArb = fc.array(fc.record({ at: fc.nat(), op: fc.constantFrom('replace' as const, 'replace' as const, 'delete' as const, 'wrap' as const), value }), { minLength: 1, maxLength: 4 });
  const structured = fc.tuple(fc.nat(json.length - 1), editsArb, fc.constantFrom(...KINDS), fc.nat(3)).map(([i, es, other, k]): ImageInput => ({
    // Mostly fed to its own parser; sometimes to another one.
    kind: k === 0 ? other : json[i]!.kind,
    text: edit(json[i]!.text, es),
  }));
  const bytes = fc.tuple(mutatedBytes(texts, 4), fc.constantFrom(...KINDS)).map(([b, kind]): ImageInput => ({ kind, text: b.toString('utf8') }));
  return {
    name: 'image',
    arbitrary: fc.oneof({ weight: 3, arbitrary: structured }, { weight: 1, arbitrary: bytes }),
    run: (input) => PARSERS[input.kind](input.text),
    clean: isOwnError,
    bytes: (input) => Buffer.from(input.text),
  };
}
