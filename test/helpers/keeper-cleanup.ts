/**
 * A vitest setup file (vitest.config.ts): when a test file ends, the keepers of the data dirs
 * its servers ran on are stopped, with every workload they still hold (see server.ts).
 */
import { afterAll } from 'vitest';
import { stopServedKeepers } from './server.js';

afterAll(stopServedKeepers, 60_000);
