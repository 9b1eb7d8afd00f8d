/** Debian's chromium via playwright-core for browser tests, and logging in through the form. */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** A fresh context logged in through the login form, on the dashboard (or at `next`). */
export async function logInWithForm(
  browser: Browser,
  url: string,
  name: string,
  password: string,
  opts: { next?: string; beforeSubmit?: (page: Page) => Promise<unknown> } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/login?next=${encodeURIComponent(opts.next ?? '/ui/')}`);
  await opts.beforeSubmit?.(page);
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/ui\//);
  return { context, page };
}
