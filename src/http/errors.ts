/** Turns anything thrown in a route into `{"error":{"code","message"}}` with the right status. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { isDiskFull } from '../core/disk-full.js';
import { CorralError, errors, isCorralError } from '../core/errors.js';
import { NO_NUL } from '../core/instances/spec.js';

export function toCorralError(e: unknown): CorralError {
  if (isCorralError(e)) return e;
  const err = e as FastifyError & { validationContext?: string };
  if (err.validation) {
    const first = err.validation[0];
    const where = err.validationContext ?? 'request';
    const field = first?.instancePath ? `${where}${first.instancePath.replaceAll('/', '.')}` : where;
    const extra =
      first?.keyword === 'additionalProperties'
        ? `unknown field "${String((first.params as { additionalProperty?: string }).additionalProperty)}"`
        : first?.keyword === 'required'
          ? `missing field "${String((first.params as { missingProperty?: string }).missingProperty)}"`
          : first?.keyword === 'pattern' && (first.params as { pattern?: string }).pattern === NO_NUL
            ? 'must not contain NUL bytes'
            : (first?.message ?? 'is invalid');
    return errors.validation(`${field}: ${extra}`);
  }
  if (isDiskFull(err)) return errors.diskFull('the disk is full: nothing can be saved until an administrator frees space');
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.bodyTooLarge('request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType(`unsupported content type; send application/json`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.badJson('the body is empty but the content type is application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errors.badJson(`the body is not valid JSON: ${err.message}`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.badRequest('content-length does not match the body');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return errors.uriTooLong('a part of the path is too long (names and ids are at most 100 characters)');
    case 'FST_ERR_BAD_URL':
      return errors.badRequest('the path is not a valid URL (a bad % escape?)');
    case 'FST_ERR_HTTP2_INVALID_VERSION':
      return errors.badRequest(err.message);
  }
  if (err instanceof SyntaxError && err.statusCode === 400) return errors.badJson(`the body is not valid JSON: ${err.message}`);
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new CorralError('bad_request', err.statusCode, err.message);
  }
  return errors.internal('internal error');
}

/** Answers anything thrown (or refused by the router: `frameworkErrors`) as `{"error":{…}}`. */
export function replyWithError(e: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const err = toCorralError(e);
  if (err.status >= 500) request.log.error({ err: e }, 'request failed');
  void reply
    .code(err.status)
    .headers(err.headers)
    .send({ error: { code: err.code, message: err.message, ...err.details } });
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(replyWithError);
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: { code: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` } });
  });
  // A WebSocket handshake refused with an ordinary answer leaves a socket that was meant to be
  // handed over: it is closed once the answer is sent, so say so. Otherwise a client that pools
  // connections (aiohttp) reuses it and its next request fails with a reset. A handshake that
  // succeeds answers 101 on the raw socket, not through this reply, so the header never shows.
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.upgrade) void reply.header('connection', 'close');
  });
}

/**
 * Requests Node cannot even parse (bad framing, oversized headers, timeouts) never reach the
 * error handler; this answers them with the same `{"error":{"code","message"}}` shape.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? errors.headersTooLarge('the request headers are too large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? errors.requestTimeout('the request took too long to arrive')
        : errors.badRequest(`malformed HTTP request (${err.code ?? 'parse error'})`);
  const body = JSON.stringify({ error: { code: e.code, message: e.message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** The error body schema every route shares in its OpenAPI document. */
export const ErrorBody = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;
