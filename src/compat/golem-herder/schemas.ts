/** Request pieces every golem-herder route shares: the document id and `?token=` (the old tool's way to authenticate sockets and links). */
import { Type } from '@sinclair/typebox';

export const DocumentId = Type.String({ pattern: '^(?!\\.{1,2}$)[A-Za-z0-9_.~-]{1,128}$', description: 'the document (webstrate) id' });

/** `?token=`, to spread into a query schema with more parameters. */
export const tokenParam = { token: Type.Optional(Type.String()) };

/** A query of `?token=` and nothing else. */
export const TokenQuery = Type.Object(tokenParam, { additionalProperties: false });
