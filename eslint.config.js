import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Import boundaries (DESIGN.md, "Layers of the code"): each folder of src/ imports only the
// folders below it, and a driver backend only the driver interface and the shared driver parts.
// A folder's rank: lower ranks may never import higher ones; equal ranks not each other.
const RANKS = {
  sys: 0,
  reference: 0,
  archive: 1,
  drivers: 2,
  image: 2,
  registry: 3,
  runtime: 3,
  // The Store is the library's face: it pulls, pushes and runs, so it sits above the registry
  // client and the runtime, which never import it.
  store: 4,
  // `strata ui`'s server: a reader of the Store that the CLI starts.
  ui: 5,
  cli: 6,
};
const layerOf = (folder) => RANKS[folder];

/** The folders (and src/index.ts) that code in `folder` must not import. */
function forbiddenFor(folder) {
  return Object.keys(RANKS).filter((other) => other !== folder && layerOf(other) >= layerOf(folder));
}

/** One regex over an import specifier: any number of `../` then a forbidden top folder. */
function layerPattern(folder) {
  const folders = forbiddenFor(folder).map((f) => `${f}(?:/|\\.js$)`);
  return {
    regex: `^(?:\\.\\./)+(?:${[...folders, 'index\\.js$'].join('|')})`,
    message: `src/${folder}/ may import only lower layers (cli → ui → store → registry/runtime → drivers/image → archive → sys/reference).`,
  };
}

/** Inside src/drivers/: what a part may import from its siblings besides `../driver.js`. */
const DRIVER_PARTS = {
  common: [],
  overlay: ['common'],
  overlay2: ['common', 'overlay'],
  'fuse-overlayfs': ['common', 'overlay'],
  aufs: ['common'],
  btrfs: ['common'],
  zfs: ['common'],
  vfs: ['common'],
  devicemapper: ['common'],
};

function driverPattern(part) {
  const allowed = ['\\.\\./', 'driver\\.js$', ...DRIVER_PARTS[part].map((p) => `${p}/`)].join('|');
  return {
    regex: `^\\.\\./(?!${allowed})`,
    message: `src/drivers/${part}/ may import only ../driver.js${DRIVER_PARTS[part].map((p) => `, ../${p}/`).join('')}: never another backend.`,
  };
}

const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

const boundaries = [
  ...Object.keys(RANKS)
    .filter((f) => f !== 'drivers')
    .map((f) => ({ files: [`src/${f}/**/*.ts`], rules: restrict(layerPattern(f)) })),
  { files: ['src/drivers/*.ts'], rules: restrict(layerPattern('drivers')) },
  ...Object.keys(DRIVER_PARTS).map((part) => ({
    files: [`src/drivers/${part}/**/*.ts`],
    rules: restrict(layerPattern('drivers'), driverPattern(part)),
  })),
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  ...boundaries,
);
