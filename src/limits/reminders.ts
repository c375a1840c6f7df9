import type { Deps } from '../context.ts';
import type { CredentialType } from '../credentials/usage.ts';
import { reminderMessage } from '../mail/messages.ts';
import { recipients } from './recipients.ts';

const DAY_MS = 86_400_000;
/** Reminders go this many days before a deadline: the tightest one that applies, each once. */
export const REMINDER_DAYS = [14, 3] as const;
const BATCH = 500;

type ReminderKind = 'expiry' | 'grace_end' | 'grace_use';

interface Due {
  credential_type: CredentialType;
  credential_id: string;
  kind: ReminderKind;
  threshold: number;
  due_at: Date;
}

/**
 * Expiry and rotation reminders (issue 9 §1.7), to the owners of the credential's team:
 * - `expiry`: a key expires within 14, then within 3 days;
 * - `grace_end`: a rotated-out key's, or an application's previous secret's, grace window
 *   ends within 14, then 3 days;
 * - `grace_use`: a rotated-out credential was still used in the last day of its grace window
 *   (so it is not yet safe to let it lapse).
 * Each reminder is claimed in `sent_reminder` (credential, kind, threshold, deadline) by the
 * statement that finds it, so it is sent at most once whatever the number of nodes and rounds;
 * a new deadline (a later rotation) earns its own reminders. Only the tightest threshold that
 * applies is sent: a key created to expire in 2 days gets the 3-day reminder alone.
 */
export async function sendReminders(deps: Deps): Promise<number> {
  const now = deps.now();
  const [near, far] = [REMINDER_DAYS[1], REMINDER_DAYS[0]];
  const nearBy = new Date(now.getTime() + near * DAY_MS);
  const farBy = new Date(now.getTime() + far * DAY_MS);
  const dayBy = new Date(now.getTime() + DAY_MS);
  const claimed = await deps.prisma.$queryRaw<Due[]>`
    WITH due AS (
      SELECT 'api_key' AS credential_type, id AS credential_id,
             CASE WHEN replaced_by_id IS NULL THEN 'expiry' ELSE 'grace_end' END AS kind,
             CASE WHEN expires_at <= ${nearBy} THEN ${near}::int ELSE ${far}::int END AS threshold, expires_at AS due_at
        FROM api_key WHERE revoked_at IS NULL AND team_id IS NOT NULL AND expires_at > ${now} AND expires_at <= ${farBy}
      UNION ALL
      SELECT 'client', id, 'grace_end',
             CASE WHEN previous_secret_expires_at <= ${nearBy} THEN ${near}::int ELSE ${far}::int END, previous_secret_expires_at
        FROM oauth_client WHERE status <> 'revoked' AND team_id IS NOT NULL AND previous_secret_expires_at > ${now} AND previous_secret_expires_at <= ${farBy}
      UNION ALL
      SELECT 'api_key', id, 'grace_use', 0, expires_at
        FROM api_key WHERE revoked_at IS NULL AND team_id IS NOT NULL AND replaced_by_id IS NOT NULL
         AND expires_at > ${now} AND expires_at <= ${dayBy} AND last_used_at >= expires_at - interval '1 day'
      UNION ALL
      SELECT 'client', id, 'grace_use', 0, previous_secret_expires_at
        FROM oauth_client WHERE status <> 'revoked' AND team_id IS NOT NULL
         AND previous_secret_expires_at > ${now} AND previous_secret_expires_at <= ${dayBy}
         AND previous_secret_used_at >= previous_secret_expires_at - interval '1 day'
    )
    INSERT INTO sent_reminder (credential_type, credential_id, kind, threshold, due_at, sent_at)
    SELECT d.credential_type, d.credential_id, d.kind, d.threshold, d.due_at, ${now} FROM due d
     WHERE NOT EXISTS (SELECT 1 FROM sent_reminder s
                        WHERE s.credential_type = d.credential_type AND s.credential_id = d.credential_id
                          AND s.kind = d.kind AND s.threshold = d.threshold AND s.due_at = d.due_at)
     ORDER BY d.due_at LIMIT ${BATCH}
    ON CONFLICT DO NOTHING
    RETURNING credential_type, credential_id, kind, threshold, due_at`;
  if (claimed.length === 0) return 0;
  const [keys, clients] = await Promise.all([
    deps.prisma.apiKey.findMany({ where: { id: { in: claimed.filter((c) => c.credential_type === 'api_key').map((c) => c.credential_id) } }, select: { id: true, name: true, teamId: true } }),
    deps.prisma.oAuthClient.findMany({ where: { id: { in: claimed.filter((c) => c.credential_type === 'client').map((c) => c.credential_id) } }, select: { id: true, name: true, teamId: true } }),
  ]);
  const named = new Map([...keys, ...clients].map((c) => [c.id, c]));
  const issuer = deps.config.LATCHKEY_ISSUER;
  for (const reminder of claimed) {
    const credential = named.get(reminder.credential_id);
    if (!credential?.teamId) continue;
    const { subject, lines } = describe(reminder, credential.name, now);
    const link = reminder.credential_type === 'api_key' ? `${issuer}/portal/keys/${credential.id}` : `${issuer}/portal/applications/${credential.id}`;
    for (const { email } of await recipients(deps, credential.teamId, false)) deps.mailer.send(reminderMessage({ to: email, subject, lines, link }));
  }
  deps.log.info({ reminders: claimed.length }, 'expiry and rotation reminders sent');
  return claimed.length;
}

function describe(reminder: Due, name: string, now: Date): { subject: string; lines: string[] } {
  const what = reminder.credential_type === 'api_key' ? `API key lk_${reminder.credential_id} (“${name}”)` : `application ${reminder.credential_id} (“${name}”)`;
  const at = reminder.due_at.toISOString();
  const days = Math.max(1, Math.ceil((reminder.due_at.getTime() - now.getTime()) / DAY_MS));
  const within = days === 1 ? 'within a day' : `in ${days} days`;
  switch (reminder.kind) {
    case 'expiry':
      return {
        subject: `${what} expires ${within}`,
        lines: [`${what} expires at ${at}. Services that use it will then be refused.`, 'Rotate it to get a successor with the same grants, and move your services to the new key before then.'],
      };
    case 'grace_end':
      return reminder.credential_type === 'api_key'
        ? { subject: `the rotated-out ${what} stops working ${within}`, lines: [`${what} was rotated; it keeps working until ${at} and is then refused.`, 'Make sure every service uses its successor by then.'] }
        : { subject: `the previous secret of ${what} stops working ${within}`, lines: [`The secret of ${what} was rotated; the previous secret keeps working until ${at} and is then refused.`, 'Make sure every service uses the new secret by then.'] };
    case 'grace_use':
      return {
        subject: `${what}: a rotated-out secret is still in use`,
        lines: [
          `${reminder.credential_type === 'api_key' ? `The rotated-out ${what}` : `The previous secret of ${what}`} was still used in the last day of its grace window, which ends at ${at}.`,
          'It is not yet safe to let it lapse: find the services still using it and switch them to the new secret.',
        ],
      };
  }
}
