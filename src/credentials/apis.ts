import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { Conflict, LatchkeyError, NotFound } from '../lib/errors.ts';
import { scopeName } from './scopes.ts';

/**
 * APIs (resource servers) of the catalog: a name, the audience URL their tokens and keys are
 * meant for, a description, and the scopes that belong to them. A scope belongs to at most one
 * API, or to none (a global scope). A credential granted scopes of some APIs gets those APIs'
 * audiences (audiencesOf); one with global scopes only gets the server's default audience.
 * Changing an API's audience or scopes changes what new credentials get, never what existing
 * ones hold.
 */

/** A conflict about one field of an API (a taken name or audience, a scope of another API): the form shows it there. */
export class ApiConflict extends Conflict {
  constructor(
    readonly field: 'name' | 'audience' | 'scopes',
    description: string,
  ) {
    super(description);
  }
}

export const apiName = z.string().trim().min(1).max(100);
export const apiAudience = z.url({ protocol: /^https?$/ }).max(2000);

export const createApiInput = z.object({
  name: apiName,
  audience: apiAudience,
  description: z.string().trim().max(500).default(''),
  scopes: z.array(scopeName).default([]),
});

export const updateApiInput = z.object({
  description: z.string().trim().max(500).optional(),
  audience: apiAudience.optional(),
  /** The API's scopes, all of them: scopes left out become global. */
  scopes: z.array(scopeName).optional(),
});

export interface ApiView {
  id: string;
  name: string;
  audience: string;
  description: string;
  createdAt: Date;
  scopes: { name: string; retiredAt: Date | null }[];
}

const API_VIEW_SELECT = {
  id: true,
  name: true,
  audience: true,
  description: true,
  createdAt: true,
  scopes: { select: { name: true, retiredAt: true }, orderBy: { name: 'asc' } },
} as const;

/** The JSON form of an API (CLI `--json`). */
export const presentApi = (api: ApiView) => ({
  id: api.id,
  name: api.name,
  audience: api.audience,
  description: api.description,
  scopes: api.scopes.map((s) => s.name),
  retired_scopes: api.scopes.filter((s) => s.retiredAt).map((s) => s.name),
});

/** Scopes given to an API must exist, be live, and belong to no other API. */
async function claimScopes(tx: Tx, apiId: string, apiName: string, scopes: string[]): Promise<void> {
  if (scopes.length === 0) return;
  const rows = await tx.$queryRaw<{ name: string; retired: boolean; api: string | null }[]>`
    SELECT s.name, s.retired_at IS NOT NULL AS retired, a.name AS api
    FROM scope s LEFT JOIN api a ON a.id = s.api_id
    WHERE s.name = ANY(${scopes}::text[]) ORDER BY s.name FOR UPDATE OF s`;
  const unknown = scopes.filter((s) => !rows.some((row) => row.name === s));
  if (unknown.length > 0) throw new LatchkeyError('invalid_scope', `unknown scope: ${unknown.join(' ')}`);
  const retired = rows.filter((row) => row.retired).map((row) => row.name);
  if (retired.length > 0) throw new LatchkeyError('invalid_scope', `scope ${retired.join(' ')} is retired`);
  const elsewhere = rows.find((row) => row.api !== null && row.api !== apiName);
  if (elsewhere) throw new ApiConflict('scopes', `scope ${elsewhere.name} belongs to the API ${elsewhere.api}`);
  await tx.scope.updateMany({ where: { name: { in: scopes } }, data: { apiId } });
}

async function assertFree(tx: Tx, field: 'name' | 'audience', value: string, exceptId?: string) {
  const taken = await tx.api.findFirst({ where: { [field]: value, ...(exceptId ? { id: { not: exceptId } } : {}) }, select: { name: true } });
  if (taken) throw new ApiConflict(field, field === 'name' ? `an API named ${value} already exists` : `the API ${taken.name} already has the audience ${value}`);
}

// One catalog change at a time: two creations cannot both find a name or audience free (the
// unique indexes would turn the loser into a database error rather than a clear conflict).
const lockCatalog = (tx: Tx) => tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('catalog:apis'))`;

export async function createApi(deps: Deps, input: z.input<typeof createApiInput>, actor: Actor): Promise<ApiView> {
  const parsed = createApiInput.parse(input);
  const scopes = [...new Set(parsed.scopes)];
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    await lockCatalog(tx);
    await assertFree(tx, 'name', parsed.name);
    await assertFree(tx, 'audience', parsed.audience);
    const api = await tx.api.create({ data: { name: parsed.name, audience: parsed.audience, description: parsed.description, createdAt: now } });
    await claimScopes(tx, api.id, api.name, scopes);
    await appendAuditEvents(tx, [actorEvent(actor, 'api.created', 'api', api.id, { name: api.name, audience: api.audience, scopes })], now);
    return tx.api.findUniqueOrThrow({ where: { id: api.id }, select: API_VIEW_SELECT });
  });
}

/** Changes an API; only what differs is written and audited (no change, no event). */
export async function updateApi(deps: Deps, name: string, input: z.input<typeof updateApiInput>, actor: Actor): Promise<ApiView> {
  const changes = updateApiInput.parse(input);
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    await lockCatalog(tx);
    const api = await tx.api.findUnique({ where: { name }, select: API_VIEW_SELECT });
    if (!api) throw new NotFound('API');
    const data: Record<string, unknown> = {};
    if (changes.description !== undefined && changes.description !== api.description) data.description = changes.description;
    if (changes.audience !== undefined && changes.audience !== api.audience) {
      await assertFree(tx, 'audience', changes.audience, api.id);
      data.audience = changes.audience;
    }
    if (Object.keys(data).length > 0) await tx.api.update({ where: { id: api.id }, data });
    if (changes.scopes !== undefined) {
      const wanted = [...new Set(changes.scopes)];
      const current = api.scopes.map((s) => s.name);
      const added = wanted.filter((s) => !current.includes(s));
      const removed = current.filter((s) => !wanted.includes(s));
      await claimScopes(tx, api.id, api.name, added);
      if (removed.length > 0) await tx.scope.updateMany({ where: { name: { in: removed }, apiId: api.id }, data: { apiId: null } });
      if (added.length > 0 || removed.length > 0) Object.assign(data, { scopesAdded: added, scopesRemoved: removed });
    }
    if (Object.keys(data).length > 0) await appendAuditEvents(tx, [actorEvent(actor, 'api.updated', 'api', api.id, { name: api.name, ...data })], now);
    return tx.api.findUniqueOrThrow({ where: { id: api.id }, select: API_VIEW_SELECT });
  });
}

export function listApis(deps: Pick<Deps, 'prisma'>): Promise<ApiView[]> {
  return deps.prisma.api.findMany({ select: API_VIEW_SELECT, orderBy: { name: 'asc' } });
}

/** One API by id, or null for an unknown or malformed id. */
export function findApiById(deps: Pick<Deps, 'prisma'>, id: string): Promise<ApiView | null> {
  if (!z.uuid().safeParse(id).success) return Promise.resolve(null);
  return deps.prisma.api.findUnique({ where: { id }, select: API_VIEW_SELECT });
}

/** The audiences of the APIs that `scopes` belong to, in API name order; none for global scopes. */
export async function audiencesOf(db: Pick<Tx, 'api'>, scopes: string[]): Promise<string[]> {
  if (scopes.length === 0) return [];
  const apis = await db.api.findMany({ where: { scopes: { some: { name: { in: scopes } } } }, select: { audience: true }, orderBy: { name: 'asc' } });
  return apis.map((api) => api.audience);
}

/**
 * A new credential's audiences: the ones asked for; else those of the catalog's APIs its scopes
 * belong to; else (global scopes only, or no API defined) the server's default audience.
 */
export async function audiencesFor(deps: Pick<Deps, 'config'>, tx: Tx, scopes: string[], asked: string[]): Promise<string[]> {
  if (asked.length > 0) return [...new Set(asked)];
  const ofApis = await audiencesOf(tx, scopes);
  return ofApis.length > 0 ? ofApis : [deps.config.LATCHKEY_DEFAULT_AUDIENCE];
}
