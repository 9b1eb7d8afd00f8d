/**
 * A user's groups (core/accounts/groups.ts): `GET /users/{name}/groups` lists every
 * membership with its source; `PUT /users/{name}/groups` replaces the ones an admin set
 * (source `admin`) — what an identity provider said is its own and comes back at each
 * sign-in. A user may read their own groups; only admins change them.
 * `GET /groups`, `GET /groups/{group}`: groups with their members (and sources) and quotas
 * (admins), in one read — what `corral group ls|show` and the dashboard show.
 * `GET|PUT /groups/{group}/quotas`: quotas for a group's members (admins; see quotas.ts).
 * `POST /groups/{group}/credits`: a grant to each member now (one ledger row each).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { UserName } from '../../core/accounts/index.js';
import { ADMIN_SOURCE, GroupName } from '../../core/accounts/groups.js';
import type { Corral } from '../../core/corral.js';
import { QuotasPatchSchema } from '../../core/credits/quotas.js';
import { GroupStore } from '../../store/groups.js';
import { GrantSchema } from './usage.js';
import { requireScope } from '../auth.js';
import { errors } from '../../core/errors.js';

const NameParams = Type.Object({ name: UserName });
const Groups = Type.Object({
  groups: Type.Array(GroupName, { description: 'every group the user is in, whatever the source' }),
  memberships: Type.Array(Type.Object({ group: GroupName, source: Type.String({ description: '"admin" or "oidc:{provider}"' }) })),
});
const tags = ['users'];

export const groupRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const { users } = corral.accounts;
  const answer = async (userId: string) => {
    const memberships = await users.groups.memberships(userId);
    return { groups: [...new Set(memberships.map((m) => m.group))], memberships };
  };

  app.get(
    '/users/:name/groups',
    { schema: { summary: "A user's groups", tags, params: NameParams, response: { 200: Groups } } },
    async (request) => {
      // Reading one's own groups needs no admin scope.
      const p = requireScope(request, request.params.name === request.principal?.user.name ? 'instances:read' : 'admin:read');
      const user = p.user.name === request.params.name ? p.user : await users.get(request.params.name);
      return answer(user.id);
    },
  );

  app.put(
    '/users/:name/groups',
    {
      schema: {
        summary: "Set the groups an admin gives a user (those from an identity provider stay)",
        tags,
        params: NameParams,
        body: Type.Object({ groups: Type.Array(GroupName, { maxItems: 200, uniqueItems: true }) }, { additionalProperties: false }),
        response: { 200: Groups },
      },
    },
    async (request) => {
      requireScope(request, 'admin:write');
      const user = await users.get(request.params.name);
      await users.groups.set(user.id, ADMIN_SOURCE, request.body.groups);
      return answer(user.id);
    },
  );

  const GroupParams = Type.Object({ group: GroupName });
  const groupStore = new GroupStore(corral.store.db);
  const quotasOf = async (group: string) => ({ group, quotas: (await groupStore.quotas([group]))[0] ?? {} });
  const GroupQuotasOnly = Type.Object(QuotasPatchSchema.properties);
  const Group = Type.Object({
    group: GroupName,
    members: Type.Array(Type.Object({ user: Type.String(), source: Type.String({ description: '"admin", "oidc:{provider}" or "ldap"' }) })),
    quotas: GroupQuotasOnly,
  });
  const GroupQuotas = Type.Object({ group: GroupName, quotas: GroupQuotasOnly });

  app.get(
    '/groups',
    { schema: { summary: 'Every group (someone is in it, or it has quotas) with its members and quotas', tags, response: { 200: Type.Object({ groups: Type.Array(Group) }) } } },
    async (request) => {
      requireScope(request, 'admin:read');
      return { groups: await groupStore.overview() };
    },
  );

  app.get(
    '/groups/:group',
    { schema: { summary: "A group's members (with each membership's source) and quotas", tags, params: GroupParams, response: { 200: Group } } },
    async (request) => {
      requireScope(request, 'admin:read');
      const [group] = await groupStore.overview(request.params.group);
      if (!group) throw errors.groupNotFound(request.params.group);
      return group;
    },
  );

  app.get(
    '/groups/:group/quotas',
    { schema: { summary: "A group's quotas (null or absent: left to the server default)", tags, params: GroupParams, response: { 200: GroupQuotas } } },
    async (request) => {
      requireScope(request, 'admin:read');
      return quotasOf(request.params.group);
    },
  );

  app.put(
    '/groups/:group/quotas',
    { schema: { summary: "Change a group's quotas (null clears one)", tags, params: GroupParams, body: QuotasPatchSchema, response: { 200: GroupQuotas } } },
    async (request) => {
      requireScope(request, 'admin:write');
      await groupStore.setQuotas(request.params.group, request.body);
      return quotasOf(request.params.group);
    },
  );

  app.post(
    '/groups/:group/credits',
    {
      schema: {
        summary: 'Grant (or, negative, take away) credits to each member of a group',
        tags,
        params: GroupParams,
        body: GrantSchema,
        response: { 200: Type.Object({ group: GroupName, granted: Type.Array(Type.Object({ user: Type.String(), balance: Type.Integer() })) }) },
      },
    },
    async (request) => {
      const { user: admin } = requireScope(request, 'admin:write');
      const { amount, reason } = request.body;
      const granted = [];
      for (const id of await groupStore.members(request.params.group)) {
        const user = await corral.store.users.byId(id);
        if (!user) continue;
        const entry = await corral.credits.grant(id, amount, reason ?? `group ${request.params.group}: ${amount > 0 ? 'granted' : 'taken'} by ${admin.name}`);
        granted.push({ user: user.name, balance: entry.balance });
      }
      return { group: request.params.group, granted };
    },
  );
};
