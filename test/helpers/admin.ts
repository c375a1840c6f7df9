import { TOTP } from 'otpauth';
import { beginEnrolment, confirmEnrolment } from '../../src/accounts/mfa.ts';
import { cliJson } from './cli.ts';
import { PortalClient, STRONG_PASSWORD } from './portal.ts';
import type { TestServer } from './server.ts';

export interface Staff {
  id: string;
  email: string;
  /** The TOTP secret (base32), for codes at any moment: `codeAt(staff, date)`. */
  secret: string;
  /** Unused recovery codes: each answers one step-up prompt (a TOTP code is single use per 30 s). */
  recoveryCodes: string[];
  client: PortalClient;
}

/** A TOTP code for `at` (default: now, as the server's clock reads it). */
export const codeAt = (staff: Pick<Staff, 'secret'>, at: Date) => new TOTP({ secret: staff.secret }).generate({ timestamp: at.getTime() });

/**
 * An admin or auditor made with `latchkey admin create --role`, MFA turned on through the
 * services, and signed in through the pages with password then code: a session with a fresh step-up.
 */
export async function signedInStaff(server: Pick<TestServer, 'url' | 'deps'>, email: string, role: 'admin' | 'auditor', options: { mfa?: boolean } = {}): Promise<Staff> {
  const created = await cliJson<{ id: string }>(server, ['admin', 'create', '--email', email, '--password', STRONG_PASSWORD, '--role', role]);
  const client = new PortalClient(server.url);
  let secret = '';
  let recoveryCodes: string[] = [];
  if (options.mfa !== false) {
    const enrolment = await beginEnrolment(server.deps, created.id);
    secret = enrolment.secret;
    // The enrolment spends the code of an earlier window; sign-in uses the current one.
    const codes = await confirmEnrolment(server.deps, created.id, new TOTP({ secret }).generate({ timestamp: server.deps.now().getTime() - 30_000 }), { type: 'cli' });
    if (!codes) throw new Error('MFA enrolment failed');
    recoveryCodes = codes;
  }
  const signIn = await client.postForm('/portal/sign-in', '/portal/sign-in', { email, password: STRONG_PASSWORD });
  if (signIn.status !== 303) throw new Error(`sign-in answered ${signIn.status}`);
  if (options.mfa !== false) {
    const verified = await client.postForm('/portal/sign-in/verify', '/portal/sign-in/verify', { code: codeAt({ secret }, server.deps.now()) });
    if (verified.status !== 303) throw new Error(`code step answered ${verified.status}`);
  }
  return { id: created.id, email, secret, recoveryCodes, client };
}

/** Makes this account's step-up stale (its code checked ten minutes ago), as time passing would. */
export async function staleStepUp(server: Pick<TestServer, 'deps'>, accountId: string): Promise<void> {
  await server.deps.prisma.session.updateMany({ where: { accountId, endedAt: null }, data: { mfaAt: new Date(server.deps.now().getTime() - 10 * 60_000) } });
}
