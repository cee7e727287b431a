// Bundles the UI into dist/ with esbuild. A file is only rewritten when its content changed,
// so that cargo (which watches dist/ to embed it) does not rebuild the API for nothing.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const outdir = join(root, 'dist');

const result = await build({
  entryPoints: [join(root, 'src/app.js'), join(root, 'src/app.css')],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  outdir,
  write: false,
  logLevel: 'warning',
});

mkdirSync(outdir, { recursive: true });
for (const file of result.outputFiles) {
  let current = null;
  try {
    current = readFileSync(file.path);
  } catch {
    // Not built yet.
  }
  if (!current || !current.equals(Buffer.from(file.contents))) {
    writeFileSync(file.path, file.contents);
    console.log(`wrote ${file.path.slice(root.length + 1)} (${file.contents.length} bytes)`);
  }
}
