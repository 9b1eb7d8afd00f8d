/**
 * The web dashboard: plain files from `web/` served under `/ui/` (no build step; see
 * docs/web.md), `index.html` for `/ui/` itself, and the security headers every response
 * carries (X-Frame-Options, nosniff, HSTS under TLS).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { securityHeaders } from '../../proxy/headers.js';

/** `web/` at the package root, from src/http/routes or dist/http/routes alike. */
export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};
const FILE = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*\.[a-z]+$/;

export const securityHeadersHook = fp(async (app: FastifyInstance, opts: { tls: boolean }) => {
  const headers = Object.entries(securityHeaders(opts.tls));
  app.addHook('onSend', async (_request, reply) => {
    for (const [k, v] of headers) if (!reply.hasHeader(k)) void reply.header(k, v);
  });
});

export async function uiRoutes(parent: FastifyInstance): Promise<void> {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const cache = new Map<string, Buffer>();
  const dev = process.env.NODE_ENV === 'development';

  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui/', 301));
  app.get(
    '/ui/*',
    { schema: { hide: true, params: Type.Object({ '*': Type.String({ maxLength: 200 }) }) } },
    async (request, reply) => {
      const rel = request.params['*'] || 'index.html';
      const type = TYPES[path.extname(rel)];
      if (!FILE.test(rel) || !type) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
      let body = dev ? undefined : cache.get(rel);
      if (!body) {
        body = await readFile(path.join(WEB_DIR, rel)).catch(() => undefined);
        if (!body) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
        cache.set(rel, body);
      }
      return reply
        .type(type)
        .header('cache-control', rel === 'index.html' ? 'no-cache' : 'public, max-age=300')
        .send(body);
    },
  );
}
