import { randomBytes } from 'node:crypto';
import type { Deps } from '../context.ts';
import type { Tx } from '../db/database.ts';
import type { LinkToken } from '../db/generated/client.ts';
import { randomBase62 } from '../lib/random.ts';

/**
 * Single-use links sent by mail (verify an address, reset a password, join a team).
 * The link carries `<id>.<secret>`; only a keyed digest of the secret is stored, so a read of
 * the table opens nothing. A token is good once, for its purpose only, until it expires.
 */
export type LinkPurpose = 'verify_email' | 'reset_password' | 'team_invite';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** How long each kind of link works (a reset is short-lived: it can take over an account). */
export const LINK_LIFETIME_MS: Record<LinkPurpose, number> = {
  verify_email: 24 * HOUR,
  reset_password: 30 * MINUTE,
  team_invite: 7 * 24 * HOUR,
};

/** The words a mail uses for that lifetime ("expires in 30 minutes"). */
export const LINK_LIFETIME_TEXT: Record<LinkPurpose, string> = {
  verify_email: '24 hours',
  reset_password: '30 minutes',
  team_invite: '7 days',
};

/** Where each link lands, under `${issuer}/portal/`. */
export const LINK_PATHS: Record<LinkPurpose, string> = {
  verify_email: 'verify-email',
  reset_password: 'reset-password/confirm',
  team_invite: 'invitations/accept',
};

const digestOf = (deps: Pick<Deps, 'keyring'>, secret: string) => deps.keyring.digest(`link:${secret}`);

export interface IssuedLink {
  /** `<id>.<secret>`: goes into the mail only, never stored or logged. */
  token: string;
  /** The absolute URL to mail. */
  link: string;
  id: string;
  expiresAt: Date;
}

/** Issues a link token inside the caller's transaction (send the mail after its commit). */
export async function issueLinkToken(
  tx: Tx,
  deps: Pick<Deps, 'keyring' | 'config' | 'now'>,
  input: {
    purpose: LinkPurpose;
    email: string;
    accountId?: string | null;
    teamId?: string | null;
    role?: string | null;
    createdById?: string | null;
    /** Overrides LINK_PATHS[purpose]. */
    path?: string;
    /** Overrides LINK_LIFETIME_MS[purpose]. */
    lifetimeMs?: number;
  },
): Promise<IssuedLink> {
  const id = randomBase62(16);
  const secret = randomBytes(32).toString('base64url');
  const now = deps.now();
  const expiresAt = new Date(now.getTime() + (input.lifetimeMs ?? LINK_LIFETIME_MS[input.purpose]));
  await tx.linkToken.create({
    data: {
      id,
      digest: digestOf(deps, secret),
      purpose: input.purpose,
      email: input.email,
      accountId: input.accountId ?? null,
      teamId: input.teamId ?? null,
      role: input.role ?? null,
      createdById: input.createdById ?? null,
      createdAt: now,
      expiresAt,
    },
  });
  const token = `${id}.${secret}`;
  const path = input.path ?? LINK_PATHS[input.purpose];
  return { token, id, expiresAt, link: `${deps.config.LATCHKEY_ISSUER}/portal/${path}?token=${encodeURIComponent(token)}` };
}

const TOKEN_SHAPE = /^([0-9A-Za-z]{16})\.([A-Za-z0-9_-]{43})$/;

/**
 * The live token behind a presented value, or null (malformed, unknown, other purpose,
 * wrong secret, expired or used: all alike). Does not use it: for pages a mail scanner may
 * prefetch (GET), and to read the email before a form is accepted.
 */
export async function peekLinkToken(
  db: Pick<Tx, 'linkToken'>,
  deps: Pick<Deps, 'keyring' | 'now'>,
  purpose: LinkPurpose,
  presented: unknown,
): Promise<LinkToken | null> {
  if (typeof presented !== 'string') return null;
  const match = TOKEN_SHAPE.exec(presented);
  if (!match) return null;
  const row = await db.linkToken.findUnique({ where: { id: match[1]! } });
  // The digest is compared in constant time even for an unknown id (a digest that never matches).
  const ok = deps.keyring.matches(`link:${match[2]!}`, row?.digest ?? null);
  if (!row || !ok || row.purpose !== purpose || row.usedAt || row.expiresAt <= deps.now()) return null;
  return row;
}

/**
 * Uses a token, inside the transaction of the change it authorises: the change and the
 * token's use commit together, and of two concurrent uses only one gets the row.
 */
export async function consumeLinkToken(tx: Tx, deps: Pick<Deps, 'keyring' | 'now'>, purpose: LinkPurpose, presented: unknown): Promise<LinkToken | null> {
  const row = await peekLinkToken(tx, deps, purpose, presented);
  if (!row) return null;
  const now = deps.now();
  const { count } = await tx.linkToken.updateMany({ where: { id: row.id, usedAt: null }, data: { usedAt: now } });
  return count === 1 ? { ...row, usedAt: now } : null;
}
