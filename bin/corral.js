#!/usr/bin/env node
import module from 'node:module';

// Node ≥ 22.1 keeps V8's compiled code in a cache on disk (under the OS temp dir), so each
// later `corral` call skips parsing its modules; older Nodes have no such call.
module.enableCompileCache?.();
await import('../dist/cli/main.js');
