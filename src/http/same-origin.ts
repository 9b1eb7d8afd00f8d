/**
 * Login CSRF: a page on another site (or on an instance's host) must not be able to post a
 * login form and log the viewer's browser into an account of the page's choosing. Browsers
 * say where a request comes from: `Sec-Fetch-Site` (current browsers) and `Origin` (on every
 * cross-origin POST). A request with neither comes from a client that is not a browser
 * (curl, the CLI, an old API client) and cannot be forged by a page, so it is let through.
 */
import type { FastifyRequest } from 'fastify';

/**
 * True when the request was not sent by a page of another origin. `same-site` is refused too:
 * instance hosts under the base domain are the same site but not the same origin.
 */
export function isSameOriginRequest(request: FastifyRequest, publicUrl?: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  let host: string;
  try {
    host = new URL(origin).host; // "null" (sandboxed frames, some redirects) throws: refused
  } catch {
    return false;
  }
  if (host === request.headers.host) return true;
  // Behind a reverse proxy that rewrites Host, the public URL names the origin users see.
  try {
    return publicUrl !== undefined && new URL(publicUrl).host === host;
  } catch {
    return false;
  }
}
