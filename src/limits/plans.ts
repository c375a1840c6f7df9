import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { Conflict, InvalidRequest, NotFound } from '../lib/errors.ts';

/** N requests per fixed window of `windowSeconds`, windows aligned to the clock (UTC epoch). */
export interface Rate {
  limit: number;
  windowSeconds: number;
}
export type QuotaPeriod = 'day' | 'month';
/** N requests per UTC day or calendar month. */
export interface Quota {
  limit: number;
  period: QuotaPeriod;
}
/** What applies to one credential: its plan's rate and quota, each overridden by its own. */
export interface Limits {
  rate: Rate | null;
  quota: Quota | null;
}

const UNIT_SECONDS = { s: 1, m: 60, h: 3_600, d: 86_400 } as const;
// A counter is an int4 in Postgres and a safe integer everywhere else; a window longer than a
// month is a quota's business.
const MAX_LIMIT = 1_000_000_000;
const MAX_WINDOW_SECONDS = 31 * 86_400;

/** `100/1m`, `5/90s`, `1000/1d` (the CLI's duration form, DESIGN §2). */
export function parseRate(text: string): Rate {
  const match = /^(\d{1,10})\/(\d{1,9})([smhd])$/.exec(text.trim());
  const limit = Number(match?.[1]);
  const windowSeconds = Number(match?.[2]) * UNIT_SECONDS[(match?.[3] ?? 's') as keyof typeof UNIT_SECONDS];
  if (!match || limit < 1 || limit > MAX_LIMIT || windowSeconds < 1 || windowSeconds > MAX_WINDOW_SECONDS) {
    throw new InvalidRequest(`rate must be N/DURATION such as 100/1m (N from 1 to ${MAX_LIMIT}, a window from 1s to 31d), not "${text.slice(0, 40)}"`);
  }
  return { limit, windowSeconds };
}

/** `10000/day` or `250000/month` (UTC). */
export function parseQuota(text: string): Quota {
  const match = /^(\d{1,10})\/(day|month)$/.exec(text.trim());
  const limit = Number(match?.[1]);
  if (!match || limit < 1 || limit > MAX_LIMIT) {
    throw new InvalidRequest(`quota must be N/day or N/month (N from 1 to ${MAX_LIMIT}), not "${text.slice(0, 40)}"`);
  }
  return { limit, period: match[2] as QuotaPeriod };
}

/** The rate in the form it is given, with the largest unit that divides the window. */
export function formatRate(rate: Rate | null): string | null {
  if (!rate) return null;
  const [unit, seconds] = (Object.entries(UNIT_SECONDS) as [string, number][]).reverse().find(([, s]) => rate.windowSeconds % s === 0)!;
  return `${rate.limit}/${rate.windowSeconds / seconds}${unit}`;
}

export const formatQuota = (quota: Quota | null): string | null => (quota ? `${quota.limit}/${quota.period}` : null);

/** The columns a plan, a key and an application share (the key's and the application's are nullable overrides). */
export interface LimitColumns {
  rateLimit: number | null;
  rateWindowSeconds: number | null;
  quotaLimit: number | null;
  quotaPeriod: string | null;
}

const rateOf = (row: LimitColumns | null | undefined): Rate | null =>
  row?.rateLimit != null && row.rateWindowSeconds != null ? { limit: row.rateLimit, windowSeconds: row.rateWindowSeconds } : null;
const quotaOf = (row: LimitColumns | null | undefined): Quota | null =>
  row?.quotaLimit != null && (row.quotaPeriod === 'day' || row.quotaPeriod === 'month') ? { limit: row.quotaLimit, period: row.quotaPeriod } : null;

/** A credential's own limits over its plan's; null when nothing applies (the hot path then skips counting). */
export function effectiveLimits(own: LimitColumns, plan: LimitColumns | null | undefined): Limits | null {
  const rate = rateOf(own) ?? rateOf(plan);
  const quota = quotaOf(own) ?? quotaOf(plan);
  return rate || quota ? { rate, quota } : null;
}

const limitColumns = (rate: Rate | null, quota: Quota | null): LimitColumns => ({
  rateLimit: rate?.limit ?? null,
  rateWindowSeconds: rate?.windowSeconds ?? null,
  quotaLimit: quota?.limit ?? null,
  quotaPeriod: quota?.period ?? null,
});

/** Plan names: what operators type and screens show. */
export const planName = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a plan name: 1 to 64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)');

export const createPlanInput = z.object({ name: planName, rate: z.string(), quota: z.string().optional() });

export interface PlanView {
  name: string;
  rate: string;
  quota: string | null;
}

const presentPlan = (plan: LimitColumns & { name: string }): PlanView => ({ name: plan.name, rate: formatRate(rateOf(plan))!, quota: formatQuota(quotaOf(plan)) });

/** Creates a plan (audited `plan.created`). A plan's limits are fixed once keys use it; make a new plan to change them. */
export async function createPlan(deps: Deps, input: z.input<typeof createPlanInput>, actor: Actor): Promise<PlanView> {
  const parsed = createPlanInput.parse(input);
  const rate = parseRate(parsed.rate);
  const quota = parsed.quota === undefined ? null : parseQuota(parsed.quota);
  const now = deps.now();
  return deps.prisma.$transaction(async (tx) => {
    const taken = await tx.plan.findUnique({ where: { name: parsed.name }, select: { id: true } });
    if (taken) throw new Conflict(`a plan named ${parsed.name} already exists`);
    const plan = await tx.plan.create({ data: { name: parsed.name, rateLimit: rate.limit, rateWindowSeconds: rate.windowSeconds, quotaLimit: quota?.limit ?? null, quotaPeriod: quota?.period ?? null, createdAt: now } });
    await appendAuditEvents(tx, [actorEvent(actor, 'plan.created', 'plan', plan.id, { name: plan.name, rate: formatRate(rate), quota: formatQuota(quota) })], now);
    return presentPlan(plan);
  });
}

export async function listPlans(deps: Pick<Deps, 'prisma'>): Promise<PlanView[]> {
  const plans = await deps.prisma.plan.findMany({ orderBy: { name: 'asc' } });
  return plans.map(presentPlan);
}

/** Every plan with how many keys and applications it limits (the admin Plans screen). */
export async function listPlansInUse(deps: Pick<Deps, 'prisma'>): Promise<(PlanView & { keys: number; applications: number })[]> {
  const [plans, keys, clients] = await Promise.all([
    deps.prisma.plan.findMany({ orderBy: { name: 'asc' } }),
    deps.prisma.apiKey.groupBy({ by: ['planId'], where: { planId: { not: null } }, _count: { _all: true } }),
    deps.prisma.oAuthClient.groupBy({ by: ['planId'], where: { planId: { not: null } }, _count: { _all: true } }),
  ]);
  const keyCount = new Map(keys.map((row) => [row.planId, row._count._all]));
  const clientCount = new Map(clients.map((row) => [row.planId, row._count._all]));
  return plans.map((plan) => ({ ...presentPlan(plan), keys: keyCount.get(plan.id) ?? 0, applications: clientCount.get(plan.id) ?? 0 }));
}

/** The plan's id by name, inside the transaction that assigns it; NotFound for an unknown name. */
export async function planIdByName(tx: Pick<Tx, 'plan'>, name: string): Promise<string> {
  const plan = await tx.plan.findUnique({ where: { name: planName.parse(name) }, select: { id: true } });
  if (!plan) throw new NotFound(`plan ${name}`);
  return plan.id;
}

/** What set-plan assigns: a plan (or none) and the credential's own overrides (absent = the plan's). */
export interface PlanAssignment {
  plan: string | null;
  rate?: string | undefined;
  quota?: string | undefined;
  /** Why (the admin screen asks): kept in the audit event. */
  reason?: string | undefined;
}

export interface AssignedLimits {
  id: string;
  plan: string | null;
  /** Effective: the override, else the plan's. */
  rate: string | null;
  quota: string | null;
}

/**
 * Sets which plan limits an API key (at /v1/keys/verify) or an application (at the token
 * endpoint), and its own overrides; the assignment replaces the previous one as a whole.
 * Audited (`api_key.plan_changed`, `client.plan_changed`); every node's cached record is
 * dropped, so the new limits apply within a second.
 */
export async function setCredentialPlan(deps: Deps, kind: 'api_key' | 'client', id: string, assignment: PlanAssignment, actor: Actor): Promise<AssignedLimits> {
  const rate = assignment.rate === undefined ? null : parseRate(assignment.rate);
  const quota = assignment.quota === undefined ? null : parseQuota(assignment.quota);
  const now = deps.now();
  return changeCredentials(deps, async (tx, invalidate) => {
    const planId = assignment.plan === null ? null : await planIdByName(tx, assignment.plan);
    const data = { planId, ...limitColumns(rate, quota) };
    const where = { id };
    const include = { plan: true } as const;
    const updated =
      kind === 'api_key'
        ? await tx.apiKey.update({ where, data, include }).catch(notFound('api key'))
        : await tx.oAuthClient.update({ where, data, include }).catch(notFound('client'));
    const effective = effectiveLimits(updated, updated.plan);
    const result: AssignedLimits = { id, plan: updated.plan?.name ?? null, rate: formatRate(effective?.rate ?? null), quota: formatQuota(effective?.quota ?? null) };
    await appendAuditEvents(tx, [actorEvent(actor, `${kind}.plan_changed`, kind, id, { plan: result.plan, rate: formatRate(rate), quota: formatQuota(quota), teamId: updated.teamId, ...(assignment.reason ? { reason: assignment.reason } : {}) })], now);
    await invalidate(`${kind === 'api_key' ? 'key' : 'client'}:${id}`);
    return result;
  });
}

/** What a credential's limits are made of, as a screen shows them: its plan, its own overrides, and what applies. */
export interface CredentialLimitsView {
  plan: string | null;
  /** The credential's own overrides (null: the plan's applies). */
  ownRate: string | null;
  ownQuota: string | null;
  /** Effective: the override, else the plan's; null when nothing limits it. */
  rate: string | null;
  quota: string | null;
}

/** An API key's or an application's limits; null for an unknown id. */
export async function credentialLimits(deps: Pick<Deps, 'prisma'>, kind: 'api_key' | 'client', id: string): Promise<CredentialLimitsView | null> {
  const select = { planId: true, rateLimit: true, rateWindowSeconds: true, quotaLimit: true, quotaPeriod: true, plan: true } as const;
  const row = kind === 'api_key' ? await deps.prisma.apiKey.findUnique({ where: { id }, select }) : await deps.prisma.oAuthClient.findUnique({ where: { id }, select });
  if (!row) return null;
  const effective = effectiveLimits(row, row.plan);
  return {
    plan: row.plan?.name ?? null,
    ownRate: formatRate(rateOf(row)),
    ownQuota: formatQuota(quotaOf(row)),
    rate: formatRate(effective?.rate ?? null),
    quota: formatQuota(effective?.quota ?? null),
  };
}

/** Prisma's "record to update not found" (P2025) is the caller's NotFound. */
const notFound = (what: string) => (error: unknown): never => {
  if ((error as { code?: string }).code === 'P2025') throw new NotFound(what);
  throw error;
};
