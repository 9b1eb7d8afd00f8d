/**
 * The `proxy` section of the config: where instances are served (a host of their own under
 * `appsDomain`; path routing only as an explicit unsafe choice), upstream pools and
 * timeouts, culling.
 */
import { Type } from '@sinclair/typebox';

const DOMAIN = '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$';
const Seconds = (def: number, description: string) => Type.Integer({ minimum: 0, default: def, description });

export const ProxyConfigSchema = Type.Object(
  {
    appsDomain: Type.Optional(
      Type.String({
        pattern: DOMAIN,
        description: 'instances are served at {instance}--{owner}.{appsDomain} (default "localhost"; port: the main origin\'s unless given)',
      }),
    ),
    baseDomain: Type.Optional(Type.String({ pattern: DOMAIN, description: 'the old name of appsDomain' })),
    pathRouting: Type.Boolean({
      default: false,
      description: 'UNSAFE: also serve instances at /i/{owner}/{instance}/ on the main origin (sandboxed by CSP, see docs/proxy.md)',
    }),
    upstreamTimeoutSeconds: Seconds(60, 'an upstream that sends no response headers for this long gets 504'),
    connectTimeoutSeconds: Seconds(5, 'connecting to an upstream that takes longer gets 502'),
    maxConnectionsPerUpstream: Type.Integer({ minimum: 1, default: 64, description: 'pooled keep-alive connections per instance port' }),
    authCacheMs: Type.Integer({ minimum: 0, default: 1000, description: 'how long a checked cookie or token is trusted without asking the store' }),
    websocketRecheckSeconds: Type.Number({ minimum: 0.1, default: 5, description: 'how often open proxied WebSockets re-check their session or token' }),
    cullIntervalSeconds: Type.Number({ minimum: 0.1, default: 60, description: 'how often the idle culler looks for idle instances' }),
    identityAssertion: Type.Object(
      {
        enabled: Type.Boolean({ default: false, description: 'also send X-Corral-Identity, a signed JWT naming the user (see docs/proxy.md)' }),
        ttlSeconds: Type.Integer({ minimum: 10, maximum: 3600, default: 60, description: 'lifetime of an X-Corral-Identity assertion' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);
