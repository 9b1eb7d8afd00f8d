/**
 * The old tools' clients posted JSON strings with no content type, or a wrong one (aiohttp
 * and requests posting `data=json.dumps(…)`): within an adapter's scope every body is read
 * as JSON whatever its content type; an empty body is no body.
 */
import type { FastifyInstance } from 'fastify';
import { errors } from '../core/errors.js';

export function acceptJsonOfAnyType(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    const text = String(body);
    if (!text.trim()) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(errors.badJson(`the body is not valid JSON: ${(e as Error).message}`), undefined);
    }
  });
}
