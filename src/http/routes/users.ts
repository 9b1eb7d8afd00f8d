/** Admins manage users. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Password, ROLES, UserName, UserSchema } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { requireScope } from '../auth.js';

const Role = Type.Union(ROLES.map((r) => Type.Literal(r)));
const NameParams = Type.Object({ name: UserName });
const tags = ['users'];

export const userRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const users = corral.accounts.users;

  app.get(
    '/users',
    { schema: { summary: 'List users', tags, response: { 200: Type.Object({ users: Type.Array(UserSchema) }) } } },
    async (request) => {
      requireScope(request, 'admin:read');
      return { users: await users.list() };
    },
  );

  app.post(
    '/users',
    {
      schema: {
        summary: 'Create a user',
        tags,
        body: Type.Object(
          {
            name: UserName,
            password: Password,
            role: Type.Optional(Role),
            credits: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: UserSchema },
      },
    },
    async (request, reply) => {
      requireScope(request, 'admin:write');
      const user = await users.create(request.body);
      return reply.code(201).header('location', `/api/v1/users/${user.name}`).send(user);
    },
  );

  app.get(
    '/users/:name',
    { schema: { summary: 'Show a user', tags, params: NameParams, response: { 200: UserSchema } } },
    async (request) => {
      requireScope(request, 'admin:read');
      return users.get(request.params.name);
    },
  );

  app.patch(
    '/users/:name',
    {
      schema: {
        summary: "Change a user's role or reset their password (which ends their sessions and tokens)",
        tags,
        params: NameParams,
        body: Type.Object(
          { role: Type.Optional(Role), password: Type.Optional(Password) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: UserSchema },
      },
    },
    async (request) => {
      const admin = requireScope(request, 'admin:write');
      return users.update(request.params.name, request.body, admin);
    },
  );

  app.delete(
    '/users/:name',
    { schema: { summary: 'Delete a user', tags, params: NameParams } },
    async (request, reply) => {
      requireScope(request, 'admin:write');
      await users.delete(request.params.name);
      return reply.code(204).send();
    },
  );
};
