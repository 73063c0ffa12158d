// Builds this guest into a WebAssembly component: `npm run build` (or
// `weir build`) writes {{name}}.wasm here. Run `npm install` first.

import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// componentize-js resolves the guest's imports inside the working directory.
process.chdir(here);
const started = Date.now();
const { component } = await componentize({
  sourcePath: join(here, 'index.js'),
  witPath: join(here, 'wit'),
  worldName: 'processor',
  // weir gives guests no network: leave out fetch and its WASI imports.
  disableFeatures: ['http', 'fetch-event'],
});
const path = join(here, '{{name}}.wasm');
await writeFile(path, component);
console.log(`built ${path} (${component.length} bytes, ${Date.now() - started} ms)`);
