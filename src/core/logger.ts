import pino, { type Logger } from 'pino';
import { prettyDestination } from './log-lines.js';

/**
 * Structured logs on stdout; secrets never leave in them. JSON, one record a line, when stdout
 * is not a terminal (files, journald, log shippers); one readable line each on a terminal
 * (log-lines.ts), unless `pretty` says otherwise.
 */
export function createLogger(level: string, opts: { pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  return pino(
    {
      level,
      redact: {
        paths: [
          'password',
          '*.password',
          'token',
          '*.token',
          'headers.authorization',
          'headers.cookie',
          'req.headers.authorization',
          'req.headers.cookie',
          'res.headers["set-cookie"]',
        ],
        censor: '[redacted]',
      },
    },
    pretty ? prettyDestination() : undefined,
  );
}
