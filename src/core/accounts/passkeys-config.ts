/** Config of passkey sign-in (`auth.passkeys`, docs/sign-in.md#passkeys). */
import { Type, type Static } from '@sinclair/typebox';

export const PasskeysConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'false: no passkey sign-in and no new passkeys' }),
    require: Type.Union([Type.Literal('off'), Type.Literal('admins'), Type.Literal('everyone')], {
      default: 'off',
      description: 'who must sign in with a passkey: a password alone then gives a session that can only register one',
    }),
    requireGroups: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      default: [],
      description: 'members of these groups must sign in with a passkey too',
    }),
    rpName: Type.String({ default: 'corral', maxLength: 64, description: 'the name authenticators show for this site' }),
  },
  { additionalProperties: false, default: {} },
);
export type PasskeysConfig = Static<typeof PasskeysConfigSchema>;
