// node oidc-provider (npm, v9), configured as Argus is for the token-endpoint benchmark:
// - JWT access tokens (RFC 9068 style) signed ES256 for one resource server (resource indicators, `accessTokenFormat:
//   'jwt'`), 300 s, audience AUDIENCE;
// - client_credentials with client_secret_basic (client `bench-service`);
// - authorization code + PKCE for a public client (`bench-app`), refresh tokens always issued and always rotated
//   (reuse of a rotated one revokes its grant), 30 days;
// - an in-memory adapter (below; no disk, so cheaper than Argus's SQLite: it favours the peer). Not the bundled
//   development adapter: that one is an LRU of 1,000 entries, which under load evicts live refresh tokens and grants
//   (their chains then fail with invalid_grant), and it rescans a grant's whole token list on every rotation.
//
// Usage: node oidc-provider-server.mjs [--port N]. Prints `listening http://127.0.0.1:PORT` once it accepts.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
export const AUDIENCE = process.env.BENCH_AUDIENCE || 'http://127.0.0.1:7480';
const SERVICE_SECRET = process.env.BENCH_SERVICE_SECRET || 'bench-service-secret';
const SCOPE = 'accounts:read';
const ACCESS_TTL = 300;
const REFRESH_TTL = 30 * 24 * 3600;

/** oidc-provider's adapter interface over Maps: O(1) per operation, entries dropped when found expired. */
class MapAdapter {
  static #entries = new Map();
  static #grants = new Map();
  static #uids = new Map();
  static #userCodes = new Map();

  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    MapAdapter.#entries.set(key, { payload, expiresAt });
    if (payload.grantId) {
      const members = MapAdapter.#grants.get(payload.grantId) ?? new Set();
      MapAdapter.#grants.set(payload.grantId, members.add(key));
    }
    if (payload.uid) MapAdapter.#uids.set(payload.uid, id);
    if (payload.userCode) MapAdapter.#userCodes.set(payload.userCode, id);
  }

  async find(id) {
    const key = this.key(id);
    const entry = MapAdapter.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      MapAdapter.#entries.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    return this.find(MapAdapter.#uids.get(uid));
  }

  async findByUserCode(userCode) {
    return this.find(MapAdapter.#userCodes.get(userCode));
  }

  async consume(id) {
    const payload = await this.find(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    MapAdapter.#entries.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of MapAdapter.#grants.get(grantId) ?? []) MapAdapter.#entries.delete(key);
    MapAdapter.#grants.delete(grantId);
  }
}

function es256Jwk() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: randomBytes(8).toString('hex') };
}

const server = createServer();
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'bench-service',
        client_secret: SERVICE_SECRET,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
      {
        client_id: 'bench-app',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    adapter: MapAdapter,
    jwks: { keys: [es256Jwk()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: SCOPE,
          audience: AUDIENCE,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    // As Argus: every code grant gets a refresh token, it outlives the browser session, and every use rotates it.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: () => false,
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: ACCESS_TTL,
      ClientCredentials: ACCESS_TTL,
      RefreshToken: REFRESH_TTL,
      Grant: REFRESH_TTL,
      Session: 12 * 3600,
    },
  });
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});
