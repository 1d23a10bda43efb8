#!/usr/bin/env node
// The `mcb` command: runs the compiled JavaScript in dist/ (`npm run build`; `npm pack` builds it first).
// A checkout without dist/ stops with one line rather than falling back to tsx, so `mcb` always runs the code an
// install runs, and a package shipped without its build fails at once. `npm run mcb -- ARGS` runs the sources.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(`mcb: ${fileURLToPath(main)} is missing: run \`npm run build\` first (or \`npm run mcb -- ARGS\` to run the TypeScript sources)`);
  process.exit(1);
}
await import(main.href);
