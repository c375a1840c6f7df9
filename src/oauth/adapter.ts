import { randomBytes } from 'node:crypto';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Deps } from '../context.ts';
import { findClient, type ClientRecord } from '../credentials/clients.ts';

/** Persists oidc-provider's own models (grants, sessions, opaque tokens…) in one table. */
export class PrismaAdapter implements Adapter {
  constructor(
    private readonly deps: Pick<Deps, 'prisma' | 'now'>,
    private readonly model: string,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const expiresAt = expiresIn ? new Date(this.deps.now().getTime() + expiresIn * 1000) : null;
    if (this.model === 'ReplayDetection') {
      // Insert-only: oidc-provider checks for a replay and then saves, so two concurrent uses
      // of one client assertion would both pass if a save could overwrite.
      try {
        await this.deps.prisma.oidcPayload.create({ data: { model: this.model, id, payload: payload as object, expiresAt } });
      } catch (error) {
        // 401 like every other failed client authentication (InvalidClient alone would be a 400).
        if ((error as { code?: string }).code === 'P2002') throw new errors.InvalidClientAuth('client assertion was already used');
        throw error;
      }
      return;
    }
    const data = {
      payload: payload as object,
      grantId: payload.grantId ?? null,
      userCode: payload.userCode ?? null,
      uid: payload.uid ?? null,
      expiresAt,
    };
    await this.deps.prisma.oidcPayload.upsert({
      where: { model_id: { model: this.model, id } },
      create: { model: this.model, id, ...data },
      update: data,
    });
  }

  find(id: string) {
    return this.#findBy({ id });
  }

  findByUserCode(userCode: string) {
    return this.#findBy({ userCode });
  }

  findByUid(uid: string) {
    return this.#findBy({ uid });
  }

  async consume(id: string): Promise<void> {
    await this.deps.prisma.oidcPayload.updateMany({ where: { model: this.model, id }, data: { consumedAt: this.deps.now() } });
  }

  async destroy(id: string): Promise<void> {
    await this.deps.prisma.oidcPayload.deleteMany({ where: { model: this.model, id } });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.deps.prisma.oidcPayload.deleteMany({ where: { grantId } });
  }

  async #findBy(where: { id?: string; uid?: string; userCode?: string }): Promise<AdapterPayload | undefined> {
    const row = await this.deps.prisma.oidcPayload.findFirst({ where: { model: this.model, ...where } });
    // Expired rows are invisible at once; sweepExpired deletes them later.
    if (!row || (row.expiresAt && row.expiresAt <= this.deps.now())) return undefined;
    return { ...(row.payload as AdapterPayload), ...(row.consumedAt ? { consumed: Math.floor(row.consumedAt.getTime() / 1000) } : {}) };
  }
}

// Random per process, so that nothing (an HS* algorithm, symmetric encryption) could ever be
// keyed with a value known outside it.
const UNUSABLE_SECRET = randomBytes(32).toString('base64url');

/** oidc-provider's view of a client, built from the cached ClientRecord. */
export function clientMetadata(client: ClientRecord) {
  return {
    client_id: client.id,
    client_name: client.name,
    // oidc-provider insists on a client_secret for secret-based methods; it never sees the real
    // one: compareClientSecret (see provider.ts) checks the presented secret against our digests.
    ...(client.authMethod === 'private_key_jwt' ? {} : { client_secret: UNUSABLE_SECRET }),
    token_endpoint_auth_method: client.authMethod,
    grant_types: client.grantTypes,
    response_types: [],
    redirect_uris: [],
    // No `scope` here: the allow-list is enforced in getResourceServerInfo against live data.
    ...(client.jwks ? { jwks: client.jwks } : {}),
    ...(client.jwksUri ? { jwks_uri: client.jwksUri } : {}),
  };
}

/** Only active clients exist as far as the protocol engine is concerned. */
export class ClientAdapter implements Partial<Adapter> {
  constructor(private readonly deps: Pick<Deps, 'prisma' | 'cache'>) {}

  async find(id: string) {
    const client = await findClient(this.deps, id);
    return client && client.status === 'active' ? clientMetadata(client) : undefined;
  }
}

/** Deletes expired provider rows and expired revocation entries. */
export async function sweepExpired(deps: Pick<Deps, 'prisma' | 'now'>): Promise<number> {
  const now = deps.now();
  const a = await deps.prisma.oidcPayload.deleteMany({ where: { expiresAt: { lt: now } } });
  const b = await deps.prisma.revokedToken.deleteMany({ where: { expiresAt: { lt: now } } });
  return a.count + b.count;
}
