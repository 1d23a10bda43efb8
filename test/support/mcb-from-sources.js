#!/usr/bin/env node
// `mcb` from the TypeScript sources (tsx), for the tests: they check the code as it is now, while bin/mcb.js runs
// the compiled build in dist/, which may be older or absent (test/integration/compiled-build.test.ts covers it).
import { register } from 'tsx/esm/api';

register();
await import('../../src/cli/main.ts');
