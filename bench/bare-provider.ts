// Baseline for the token benchmark: a bare oidc-provider 9 with its in-memory adapter, one
// static client and the same client_credentials grant Latchkey serves (resource indicators,
// JWT access tokens signed ES256, same TTL). Run in its own process:
//   PORT=... BENCH_CLIENT_ID=... BENCH_CLIENT_SECRET=... node --import tsx bench/bare-provider.ts
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';

const port = Number(process.env.PORT ?? 0);
const issuer = process.env.ISSUER ?? `http://127.0.0.1:${port}`;
const audience = process.env.BENCH_AUDIENCE ?? issuer;
const ttl = Number(process.env.BENCH_TTL_S ?? 600);

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench' };

const configuration: Configuration = {
  clients: [
    {
      client_id: process.env.BENCH_CLIENT_ID ?? 'bench',
      client_secret: process.env.BENCH_CLIENT_SECRET ?? 'bench-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 's',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [jwk] } as Configuration['jwks'],
  scopes: ['s'],
  ttl: { ClientCredentials: ttl, AccessToken: ttl },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 's',
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  async findAccount() {
    return undefined;
  },
};

const provider = new Provider(issuer, configuration);
const server = provider.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
