/**
 * Credits and usage: your usage (admins: anyone's) with ledger rows and sums, the live CPU
 * and memory of running instances, quotas, and admins' grants (`corral user credits`).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { UserName, type Principal } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';
import { QuotasPatchSchema, QuotasViewSchema } from '../../core/credits/quotas.js';
import { LiveInstanceSchema, UsageQuerySchema, UsageRecordSchema, UsageReportSchema, recordOf } from '../../core/credits/usage.js';
import { requirePrincipal, requireScope } from '../auth.js';

/** A grant of credits (or, negative, a withdrawal): to a user here, to each member of a group in routes/groups.ts. */
export const GrantSchema = Type.Object(
  {
    amount: Type.Integer({ minimum: -1_000_000_000_000, maximum: 1_000_000_000_000, not: { const: 0 }, description: 'not 0' }),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
const tags = ['usage'];
const NameParams = Type.Object({ name: UserName });
const QuotasReply = Type.Object({ user: Type.String(), quotas: QuotasViewSchema, use: QuotasViewSchema });

export const usageRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const { credits } = corral;
  const users = corral.accounts.users;

  /** The user a request may look at: itself, or (admins) anyone. */
  const subject = async (p: Principal, name: string | undefined) => {
    if (name === undefined || name === p.user.name) return p.user;
    return users.get(name);
  };
  const quotasOf = async (userId: string, name: string) => ({
    user: name,
    quotas: await credits.quotas.of(userId),
    use: await credits.quotas.use(userId, credits.jobs.activeJobs(userId)),
  });

  app.get(
    '/usage',
    {
      schema: {
        summary: 'Credits: balance, ledger rows and sums over a time range (admins: any user)',
        tags,
        querystring: UsageQuerySchema,
        response: { 200: UsageReportSchema },
      },
    },
    async (request) => {
      const p = requirePrincipal(request);
      const q = request.query;
      if (q.user !== undefined && q.user !== p.user.name) requireScope(request, 'admin:read');
      const user = await subject(p, q.user);
      const from = q.from === undefined ? undefined : Date.parse(q.from);
      const to = q.to === undefined ? undefined : Date.parse(q.to);
      // An empty range is a mistake (swapped bounds), not a question with an empty answer.
      if (from !== undefined && to !== undefined && from >= to) throw errors.validation('querystring.to: must be after from');
      const ledger = await credits.usage.ledger(user, { from, to, group: q.group, limit: q.limit });
      const { quotas, use } = await quotasOf(user.id, user.name);
      return {
        user: user.name,
        balance: await credits.balance(user.id),
        from: q.from ?? null,
        to: q.to ?? null,
        group: q.group,
        ...ledger,
        quotas,
        quotaUse: use,
      };
    },
  );

  app.get(
    '/usage/instances',
    {
      schema: {
        summary: 'CPU and memory of your running instances now (admins: all=true for everyone’s)',
        tags,
        querystring: Type.Object({ all: Type.Boolean({ default: false }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ instances: Type.Array(LiveInstanceSchema) }) },
      },
    },
    async (request) => {
      const { user } = requireScope(request, 'instances:read');
      return { instances: await credits.usage.live(user, request.query.all) };
    },
  );

  app.post(
    '/users/:name/credits',
    {
      schema: {
        summary: 'Grant (or, with a negative amount, take away) credits',
        tags,
        params: NameParams,
        body: GrantSchema,
        response: { 200: Type.Object({ user: Type.String(), balance: Type.Integer(), entry: UsageRecordSchema }) },
      },
    },
    async (request) => {
      const { user: admin } = requireScope(request, 'admin:write');
      const user = await users.get(request.params.name);
      const { amount, reason } = request.body;
      const entry = await credits.grant(user.id, amount, reason ?? `${amount > 0 ? 'granted' : 'taken'} by ${admin.name}`);
      return { user: user.name, balance: entry.balance, entry: recordOf(entry) };
    },
  );

  app.get(
    '/quotas',
    { schema: { summary: 'Your quotas and what you use of them', tags, response: { 200: QuotasReply } } },
    async (request) => {
      const { user } = requirePrincipal(request);
      return quotasOf(user.id, user.name);
    },
  );

  app.get(
    '/users/:name/quotas',
    { schema: { summary: "A user's quotas and use", tags, params: NameParams, response: { 200: QuotasReply } } },
    async (request) => {
      requireScope(request, 'admin:read');
      const user = await users.get(request.params.name);
      return quotasOf(user.id, user.name);
    },
  );

  app.patch(
    '/users/:name/quotas',
    {
      schema: {
        summary: "Set a user's own quotas (null: back to the server default)",
        tags,
        params: NameParams,
        body: QuotasPatchSchema,
        response: { 200: QuotasReply },
      },
    },
    async (request) => {
      requireScope(request, 'admin:write');
      const user = await users.get(request.params.name);
      await credits.quotas.set(user.id, request.body);
      return quotasOf(user.id, user.name);
    },
  );
};
