/** Screenshots of browser tests, saved as test-artifacts/{name}.png (CI keeps that folder). */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { ROOT } from './server.js';

export const ARTIFACTS = path.join(ROOT, 'test-artifacts');

export async function shot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
