/**
 * vitest globalSetup for the tests that need Docker (files with "docker" or "swarm" in their
 * path; other runs skip all of this). Finds an engine — or starts a private dockerd as root —,
 * builds the test images, and hands the address to the test files (inject('dockerHost')).
 * When no engine can be had, the reason goes to them instead, and they skip visibly.
 */
import type { TestProject } from 'vitest/node';
import { connectEngine } from '../../src/drivers/docker/engine.js';
import { buildTestImages } from './docker-images.js';
import { obtainEngine } from './docker-engine.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `unix://…` of the engine the docker tests use; '' when there is none. */
    dockerHost: string;
    /** Why there is no engine (shown as the skip reason). */
    dockerUnavailable: string;
  }
}

const NEEDS_DOCKER = /(docker|swarm)[^/]*$/;

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  project.provide('dockerHost', '');
  project.provide('dockerUnavailable', 'no docker test selected');
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
  const { testFiles } = await project.globTestFiles(filters);
  if (!testFiles.some((f) => NEEDS_DOCKER.test(f))) return;

  const engine = await obtainEngine();
  if ('unavailable' in engine) {
    project.provide('dockerUnavailable', engine.unavailable);
    console.warn(`docker tests will be skipped: ${engine.unavailable}`);
    return;
  }
  try {
    const t = Date.now();
    const built = await buildTestImages(connectEngine(engine.host));
    if (built.length) console.log(`built ${built.join(', ')} in ${Date.now() - t} ms on Docker ${engine.version}`);
  } catch (e) {
    await engine.stop();
    throw e;
  }
  project.provide('dockerHost', engine.host);
  return () => engine.stop();
}
