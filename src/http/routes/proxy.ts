/**
 * Per-instance proxy settings (who it is shared with, the default instance, idle culling),
 * and where instances are served: each on a host of its own (see src/proxy/origins.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { UserName, type Principal } from '../../core/accounts/index.js';
import { GroupName } from '../../core/accounts/groups.js';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';
import { LABEL_NAME } from '../../proxy/origins.js';
import type { Proxy } from '../../proxy/proxy.js';
import { requireScope } from '../auth.js';

const Params = Type.Object({ owner: UserName, instance: UserName });
const Settings = Type.Object({
  sharedWith: Type.Array(UserName, { maxItems: 100, uniqueItems: true, description: 'users who may open it too' }),
  sharedWithGroups: Type.Array(GroupName, { maxItems: 100, uniqueItems: true, description: 'members of these groups may open it too' }),
  default: Type.Boolean({ description: 'after login, `/` opens this instance' }),
  idleTimeoutSeconds: Type.Integer({ minimum: 0, maximum: 30 * 24 * 3600, description: 'stop after this long without proxied traffic; 0 = never' }),
  startOnDemand: Type.Boolean({ description: 'opening it through the proxy starts it when stopped' }),
  url: Type.Union([Type.String(), Type.Null()], {
    description: 'where the proxy serves it (its first port); null when its or its owner\'s name cannot be a host name',
  }),
});
const Patch = Type.Partial(Type.Omit(Settings, ['url']), { additionalProperties: false });
const tags = ['proxy'];
const Addresses = Type.Object({
  appUrl: Type.String({ description: 'an instance\'s address with {instance} and {owner} to fill in; a named port adds --{port} after the owner' }),
  namePattern: Type.String({ description: 'the instance and owner names that can form a host name' }),
  pathRouting: Type.Boolean({ description: 'whether the unsafe /i/{owner}/{instance}/ addresses are served too' }),
});

export const proxySettingsRoutes: FastifyPluginAsyncTypebox<{ corral: Corral; proxy: Proxy }> = async (app, { corral, proxy }) => {
  const { store, accounts } = corral;

  /** The instance, if the caller owns it or is an admin; otherwise "not found". */
  const owned = async (p: Principal, owner: string, instance: string) => {
    const { target } = await proxy.lookup(owner, instance);
    if (!target || (target.ownerId !== p.user.id && p.user.role !== 'admin')) throw errors.instanceNotFound(`${owner}/${instance}`);
    return target;
  };

  const current = async (instanceId: string, owner: string, instance: string, ownerId: string): Promise<Static<typeof Settings>> => {
    const s = await store.proxy.settings(instanceId);
    const names = await Promise.all((s?.sharedWith ?? []).map((id) => store.users.byId(id).then((u) => u?.name)));
    const def = await store.proxy.defaultFor(ownerId);
    return {
      sharedWith: names.filter((n): n is string => !!n),
      sharedWithGroups: s?.sharedWithGroups ?? [],
      default: def?.instanceId === instanceId,
      idleTimeoutSeconds: s?.idleTimeoutSeconds ?? 0,
      startOnDemand: s?.startOnDemand ?? false,
      url: proxy.origins.appUrl(owner, instance) ?? null,
    };
  };

  app.get(
    '/proxy',
    { schema: { summary: 'Where instances are served', tags, response: { 200: Addresses } } },
    async (request) => {
      requireScope(request, 'instances:read');
      return { appUrl: proxy.origins.template(), namePattern: LABEL_NAME, pathRouting: corral.config.proxy.pathRouting };
    },
  );

  app.get(
    '/proxy/:owner/:instance',
    { schema: { summary: "An instance's proxy settings", tags, params: Params, response: { 200: Settings } } },
    async (request) => {
      const p = requireScope(request, 'instances:read');
      const { owner, instance } = request.params;
      const t = await owned(p, owner, instance);
      return current(t.instanceId, owner, instance, t.ownerId);
    },
  );

  app.put(
    '/proxy/:owner/:instance',
    { schema: { summary: "Change an instance's proxy settings", tags, params: Params, body: Patch, response: { 200: Settings } } },
    async (request) => {
      const p = requireScope(request, 'instances:write');
      const { owner, instance } = request.params;
      const t = await owned(p, owner, instance);
      const before = await store.proxy.settings(t.instanceId);
      const body = request.body;
      const sharedWith = body.sharedWith
        ? await Promise.all(body.sharedWith.map(async (n) => (await accounts.users.get(n)).id))
        : (before?.sharedWith ?? []);
      await store.proxy.upsert({
        instanceId: t.instanceId,
        ownerName: owner,
        instanceName: instance,
        sharedWith,
        sharedWithGroups: body.sharedWithGroups,
        idleTimeoutSeconds: body.idleTimeoutSeconds ?? before?.idleTimeoutSeconds ?? 0,
        startOnDemand: body.startOnDemand ?? before?.startOnDemand ?? false,
      });
      if (body.default !== undefined) {
        const def = await store.proxy.defaultFor(t.ownerId);
        if (body.default) await store.proxy.setDefault(t.ownerId, t.instanceId);
        else if (def?.instanceId === t.instanceId) await store.proxy.setDefault(t.ownerId, null);
      }
      proxy.invalidate(owner, instance);
      return current(t.instanceId, owner, instance, t.ownerId);
    },
  );
};
