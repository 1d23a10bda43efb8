// The peak RSS of a bench child that loads the modules the others use and does nothing: node, tsx and the code
// itself, the floor under every RSS figure (the worker runs the same way, `node --import tsx`).
import '../src/archive/index.ts';
import '../src/restore/run.ts';
import '../src/storage/index.ts';
import { measureAndPrint } from './child.ts';

await measureAndPrint(async () => ({}));
