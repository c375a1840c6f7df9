import { z } from 'zod';
import { actorEvent, appendAuditEvents } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import type { Deps } from '../context.ts';
import { Conflict } from '../lib/errors.ts';
import { randomBase62 } from '../lib/random.ts';
import type { Tx } from '../db/database.ts';
import { createAccount, STAFF_ROLES } from './accounts.ts';
import { issueLinkToken } from './links.ts';
import { hashPassword } from './passwords.ts';

export const createAdminInput = z.object({
  email: z.email().transform((e) => e.toLowerCase()),
  password: z.string().min(12, 'passwords need at least 12 characters').max(1024).optional(),
  role: z.enum(STAFF_ROLES, { message: 'role must be admin or auditor' }).default('admin'),
});

/**
 * Creates an admin or an auditor (issue 8 §1.1), or gives an existing account that role; without
 * a password one is generated and returned (shown once, never logged). `inTransaction` runs in
 * the creating transaction (the first-start link commits with the account).
 */
export async function createAdmin<T = void>(
  deps: Pick<Deps, 'prisma' | 'now'>,
  input: z.input<typeof createAdminInput>,
  actor: Actor,
  inTransaction?: (tx: Tx, account: { id: string; email: string }) => Promise<T>,
) {
  const { email, password: given, role } = createAdminInput.parse(input);
  const password = given ?? randomBase62(24);
  const passwordHash = await hashPassword(password);
  const now = deps.now();
  const account = await deps.prisma.$transaction(async (tx) => {
    const existing = await tx.account.findUnique({ where: { email } });
    if (existing?.role === role) throw new Conflict(`an ${role} with email ${email} already exists`);
    const saved = existing
      ? await tx.account.update({ where: { email }, data: { role, passwordHash, passwordChangedAt: now } })
      : (await createAccount(tx, { email, passwordHash, role, emailVerifiedAt: now, now })).account;
    await appendAuditEvents(tx, [actorEvent(actor, 'account.admin_created', 'account', saved.id, { email, role })], now);
    return { saved, extra: await inTransaction?.(tx, saved) };
  });
  return { id: account.saved.id, email, role, ...(given ? {} : { password }), extra: account.extra as T };
}

/** How long the first-start link works: long enough for whoever reads the console the next morning. */
export const FIRST_START_LINK_MS = 24 * 60 * 60_000;

/**
 * First start: make sure someone can sign in to the admin screens. No password is printed
 * (console output ends up in log collectors, issue 9 §1.11): the admin's password is random and
 * never shown, and the result carries a single-use link to set one, valid for 24 hours. The link
 * is the portal's password-reset confirmation, so its rules hold (single use, MFA still asked).
 */
export async function ensureFirstAdmin(deps: Pick<Deps, 'prisma' | 'config' | 'now' | 'keyring'>): Promise<{ email: string; link: string; expiresAt: Date } | null> {
  if (await deps.prisma.account.count({ where: { role: 'admin' } })) return null;
  const created = await createAdmin(deps, { email: deps.config.LATCHKEY_ADMIN_EMAIL }, { type: 'system' }, (tx, account) =>
    issueLinkToken(tx, deps, { purpose: 'reset_password', email: account.email, accountId: account.id, lifetimeMs: FIRST_START_LINK_MS }),
  ).catch((error) => {
    // Another node created it first: seen before our insert (Conflict) or by it (the unique email).
    if (error instanceof Conflict || (error as { code?: string }).code === 'P2002') return null;
    throw error;
  });
  return created && { email: created.email, link: created.extra.link, expiresAt: created.extra.expiresAt };
}
