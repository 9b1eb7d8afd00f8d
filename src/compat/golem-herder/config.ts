/** golem-herder's own settings (`compat.golemHerder.*`), beside the listener block every adapter has. */
import { Type } from '@sinclair/typebox';

const MiB = 1024 * 1024;

export const GolemHerderSettings = {
  runAs: Type.String({
    default: 'golem-herder',
    pattern: '^[a-z0-9_.-]{1,64}$',
    description: 'with auth off: the user who owns golems, minions and relay channels of callers without a token (created if missing)',
  }),
  tokenPassword: Type.Optional(
    Type.String({ minLength: 8, secret: true, description: 'password of POST /token/v1/generate (absent: 405)' }),
  ),
  defaultCredits: Type.Integer({ minimum: 0, default: 30000, description: 'credits of a generated token that names none' }),
  maxTokenCredits: Type.Integer({
    minimum: 0,
    default: 1_000_000,
    description: 'most credits a generated token may carry; more is refused with 400 (a leaked token password must not mint a fortune)',
  }),
  tokenTtlSeconds: Type.Integer({ minimum: 60, default: 365 * 24 * 3600, description: 'lifetime of a generated token' }),
  creditsPerSecond: Type.Number({ minimum: 0, default: 1, description: 'what a running daemon costs' }),
  minionTimeoutSeconds: Type.Number({ exclusiveMinimum: 0, default: 30, description: 'time limit of a controlled minion (at most jobs.maxTimeoutSeconds)' }),
  documentUrl: Type.String({
    pattern: '^https?://',
    default: 'http://127.0.0.1:7007/{id}',
    description: 'the page a golem opens; {id} is replaced by the document id',
  }),
  chromium: Type.String({ pattern: '^/', default: '/usr/bin/chromium', description: 'the headless browser golems run' }),
  golemMemoryBytes: Type.Integer({ minimum: 64 * MiB, default: 1024 * MiB }),
  golemPids: Type.Integer({ minimum: 64, default: 1024, description: 'Chromium runs many processes and threads' }),
};
