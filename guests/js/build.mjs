// Builds every JavaScript guest in this directory into a WebAssembly component.
//
//     node build.mjs <out-dir> [guest...]
//
// A guest is a directory holding `index.js`; it becomes `<out-dir>/<name>.wasm`,
// targeting world `processor` of `../../wit`. componentize-js is called through
// its Node API (its CLI wrapper in jco mishandles some paths). Run `npm install --no-save` here
// first.

import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wit = resolve(here, '../../wit');

async function guests() {
  const names = [];
  for (const entry of await readdir(here, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === 'node_modules') continue;
    const found = await stat(join(here, entry.name, 'index.js')).catch(() => null);
    if (found !== null) names.push(entry.name);
  }
  return names.sort();
}

const [outArg, ...only] = process.argv.slice(2);
if (outArg === undefined) {
  console.error('usage: node build.mjs <out-dir> [guest...]');
  process.exit(2);
}
const out = resolve(outArg);
// componentize-js resolves a guest's imports (`../weir-guest.js`) inside the
// working directory only, so build from here whatever the caller's directory.
process.chdir(here);
await mkdir(out, { recursive: true });
for (const name of only.length > 0 ? only : await guests()) {
  const started = Date.now();
  const { component } = await componentize({
    sourcePath: join(here, name, 'index.js'),
    witPath: wit,
    worldName: 'processor',
    // The host gives guests no network: leave out fetch and its WASI imports.
    disableFeatures: ['http', 'fetch-event'],
  });
  const path = join(out, `${name}.wasm`);
  await writeFile(path, component);
  console.log(`built ${path} (${component.length} bytes, ${Date.now() - started} ms)`);
}
