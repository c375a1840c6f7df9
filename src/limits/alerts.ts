import type { Deps } from '../context.ts';
import { actorEvent, appendAuditEvents, type AuditEventInput } from '../audit/audit-log.ts';
import type { Actor } from '../actor.ts';
import { NotFound } from '../lib/errors.ts';
import type { CredentialType, UsageFindings } from '../credentials/usage.ts';
import { utcHour } from '../credentials/usage.ts';
import type { Tx } from '../db/database.ts';
import { changeCredentials } from '../lib/invalidation.ts';
import { utcText } from '../lib/utc-text.ts';
import { alertMessage } from '../mail/messages.ts';
import { recipients } from './recipients.ts';
import { sendReminders } from './reminders.ts';

/**
 * Anomaly alerts (issue 9 §1.6). Each alert is raised once per (kind, credential, window),
 * whichever node notices it first: the `credential_alert` primary key decides, in the same
 * transaction as the `alert.<kind>` audit event and, under the team's auto-suspend policy, the
 * key's suspension. Mail to the team's owners and to admins goes after the commit, one message
 * per person per alert, never one per request.
 *
 * - spike: an hour's checks above LATCHKEY_ALERT_SPIKE_FACTOR × the mean of the 24 hours
 *   before, and above LATCHKEY_ALERT_SPIKE_FLOOR (evaluated by a timer from usage_hourly);
 * - burst: LATCHKEY_ALERT_BURST failed checks of one key or application (credentials/usage.ts);
 * - new_network: a /24 or /48 not seen for that credential in 30 days (credentials/usage.ts);
 * - rotated_secret: a rotated-out key, or an application's previous secret, used in its grace window.
 */
export type AlertKind = 'spike' | 'burst' | 'new_network' | 'rotated_secret';

export interface Alert {
  kind: AlertKind;
  type: CredentialType;
  id: string;
  /** What makes this alert one of a kind: an hour, a burst slot, a network, a grace window's end. */
  window: string;
  /** Figures for the audit event and the mail: counts, a network, dates. Never a secret. */
  figures: Record<string, string | number>;
}

interface Owner {
  name: string;
  teamId: string | null;
  autoSuspend: boolean;
  /** Already suspended or revoked: nothing to suspend. */
  settled: boolean;
}

/**
 * The team's alert policy: with autoSuspendOnAlert, an alert about one of its API keys also
 * suspends that key (reversibly: `latchkey key unsuspend`). Off by default.
 */
export async function setAlertPolicy(deps: Pick<Deps, 'prisma' | 'now'>, actor: Actor, teamId: string, autoSuspendOnAlert: boolean): Promise<{ team_id: string; auto_suspend_on_alert: boolean }> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(teamId)) throw new NotFound('team');
  const now = deps.now();
  await deps.prisma.$transaction(async (tx) => {
    const updated = await tx.team.updateMany({ where: { id: teamId }, data: { autoSuspendOnAlert } });
    if (updated.count === 0) throw new NotFound('team');
    await appendAuditEvents(tx, [actorEvent(actor, 'team.alert_policy_changed', 'team', teamId, { autoSuspendOnAlert })], now);
  });
  return { team_id: teamId, auto_suspend_on_alert: autoSuspendOnAlert };
}

/** Arbitrary, fixed: the advisory lock that lets one node at a time scan for spikes. */
const SPIKE_LOCK = 0x4c4b_0a1e;

export class Alerts {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** Told of each alert raised (metrics). */
  onRaised: ((kind: AlertKind) => void) | undefined;

  constructor(private readonly deps: Deps) {}

  /** Raises the alerts a usage flush found (credentials/usage.ts calls this). */
  async observe(findings: UsageFindings): Promise<void> {
    const alerts: Alert[] = [
      ...findings.bursts.map((b): Alert => ({
        kind: 'burst',
        type: b.type,
        id: b.id,
        window: b.windowStart.toISOString(),
        figures: { failed: b.failed, windowMs: this.deps.config.LATCHKEY_ALERT_BURST.windowMs, since: b.since.toISOString() },
      })),
      ...(this.deps.config.LATCHKEY_ALERT_NEW_NETWORK ? findings.newNetworks : []).map((n): Alert => ({
        kind: 'new_network',
        type: n.type,
        id: n.id,
        // The same network may alert again once it has gone unseen for 30 days.
        window: `${n.network} ${this.deps.now().toISOString().slice(0, 10)}`,
        figures: { network: n.network },
      })),
      ...findings.rotatedUses.map((r): Alert => ({
        kind: 'rotated_secret',
        type: r.type,
        id: r.id,
        window: r.graceEndsAt.toISOString(),
        figures: { graceEndsAt: r.graceEndsAt.toISOString() },
      })),
    ];
    for (const alert of alerts) await this.raise(alert);
  }

  /** Raises an alert unless it was raised already; true when this call raised it. */
  async raise(alert: Alert): Promise<boolean> {
    const deps = this.deps;
    const now = deps.now();
    const outcome = await changeCredentials(deps, async (tx, invalidate) => {
      const owner = await credentialOwner(tx, alert.type, alert.id);
      if (!owner) return null;
      const claimed = await tx.$executeRaw`
        INSERT INTO credential_alert (kind, credential_type, credential_id, "window", raised_at)
        VALUES (${alert.kind}, ${alert.type}, ${alert.id}, ${alert.window}, ${now})
        ON CONFLICT DO NOTHING`;
      if (claimed === 0) return null;
      // A burst of failed checks is someone guessing at a key, not a sign that it leaked:
      // suspending for it would hand anyone who knows a key's public id a way to switch it off.
      const suspend = alert.kind !== 'burst' && alert.type === 'api_key' && owner.autoSuspend && !owner.settled;
      const events: AuditEventInput[] = [
        {
          type: `alert.${alert.kind}`,
          actorType: 'system',
          subjectType: alert.type,
          subjectId: alert.id,
          data: { ...alert.figures, teamId: owner.teamId, ...(suspend ? { suspended: true } : {}) },
        },
      ];
      if (suspend) {
        await tx.apiKey.update({ where: { id: alert.id }, data: { suspendedAt: now } });
        events.push({ type: 'api_key.suspended', actorType: 'system', subjectType: 'api_key', subjectId: alert.id, data: { reason: `alert.${alert.kind}`, teamId: owner.teamId } });
        await invalidate(`key:${alert.id}`);
      }
      await appendAuditEvents(tx, events, now);
      return { owner, suspended: suspend };
    });
    if (!outcome) return false;
    this.onRaised?.(alert.kind);
    deps.log.warn({ alert: alert.kind, credentialType: alert.type, credentialId: alert.id, suspended: outcome.suspended }, 'credential alert raised');
    await this.#mail(alert, outcome.owner, outcome.suspended);
    return true;
  }

  async #mail(alert: Alert, owner: Owner, suspended: boolean): Promise<void> {
    const issuer = this.deps.config.LATCHKEY_ISSUER;
    const what = alert.type === 'api_key' ? `API key lk_${alert.id}` : `application ${alert.id}`;
    const named = `${what} (“${owner.name}”)`;
    const { subject, lines } = describe(alert, named);
    if (suspended) lines.push('The team’s policy suspends a key on an alert: the key is refused until an operator unsuspends it (latchkey key unsuspend).');
    for (const { email, admin } of await recipients(this.deps, owner.teamId)) {
      const link = admin ? `${issuer}/admin` : `${issuer}/portal/activity`;
      this.deps.mailer.send(alertMessage({ to: email, subject, lines: [...lines], link }));
    }
  }

  /**
   * Spikes in the current and the previous hour (whose last minutes the previous round may not
   * have seen): one query per hour over usage_hourly (its hour index), by one node at a time (an
   * advisory lock; a node that does not get it skips the round). An hour is compared with the
   * mean of the 24 before it, absent hours counting as zero.
   */
  async evaluateSpikes(): Promise<number> {
    const current = utcHour(this.deps.now());
    let raised = 0;
    for (const hour of [new Date(current.getTime() - 3_600_000), current]) raised += await this.#spikesIn(hour);
    return raised;
  }

  async #spikesIn(hour: Date): Promise<number> {
    const { deps } = this;
    const factor = deps.config.LATCHKEY_ALERT_SPIKE_FACTOR;
    const floor = deps.config.LATCHKEY_ALERT_SPIKE_FLOOR;
    const since = new Date(hour.getTime() - 24 * 3_600_000);
    const spikes = await deps.prisma.$transaction(async (tx) => {
      const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${SPIKE_LOCK}) AS locked`;
      if (!lock?.locked) return [];
      return tx.$queryRaw<{ credential_type: CredentialType; credential_id: string; uses: number; mean: number }[]>`
        SELECT h.credential_type, h.credential_id, (h.succeeded + h.failed)::int AS uses,
               (COALESCE((SELECT sum(p.succeeded + p.failed) FROM usage_hourly p
                           WHERE p.credential_type = h.credential_type AND p.credential_id = h.credential_id
                             AND p.hour >= ${since} AND p.hour < ${hour}), 0) / 24.0)::float8 AS mean
        FROM usage_hourly h
        WHERE h.hour = ${hour} AND h.succeeded + h.failed > ${floor}`;
    });
    let raised = 0;
    for (const row of spikes) {
      if (row.uses <= factor * row.mean) continue;
      const ok = await this.raise({
        kind: 'spike',
        type: row.credential_type,
        id: row.credential_id,
        window: hour.toISOString(),
        figures: { uses: row.uses, hourlyMean: Math.round(row.mean * 100) / 100, hour: hour.toISOString() },
      });
      if (ok) raised += 1;
    }
    return raised;
  }

  /** One round of the timer: spikes, then due reminders, and (hourly) forgetting what no rule reads any more. */
  async evaluate(): Promise<void> {
    await this.evaluateSpikes();
    await sendReminders(this.deps);
    const now = this.deps.now();
    if (this.#prunedAt === undefined || now.getTime() - this.#prunedAt >= 3_600_000) {
      this.#prunedAt = now.getTime();
      await pruneAlertData(this.deps, now);
    }
  }

  #prunedAt: number | undefined;

  start(intervalMs = this.deps.config.LATCHKEY_ALERT_INTERVAL): void {
    this.#timer = setInterval(() => {
      // A slow round is not overlapped by the next.
      this.#running ??= this.evaluate()
        .catch((err) => this.deps.log.warn({ err }, 'alert evaluation failed'))
        .finally(() => (this.#running = undefined));
    }, intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}

/**
 * Hourly usage is kept a week (a spike reads 25 hours; the charts read usage_daily), networks
 * unseen for 30 days are new again anyway, and alert and reminder rows outlive every window
 * they deduplicate by 30 days.
 */
export async function pruneAlertData(deps: Pick<Deps, 'prisma' | 'config'>, now: Date): Promise<void> {
  const ago = (days: number) => new Date(now.getTime() - days * 86_400_000);
  await deps.prisma.usageHourly.deleteMany({ where: { hour: { lt: ago(7) } } });
  await deps.prisma.credentialNetwork.deleteMany({ where: { lastSeen: { lt: ago(31) } } });
  await deps.prisma.credentialAlert.deleteMany({ where: { raisedAt: { lt: ago(30) } } });
  // Only the current and the previous slot are ever read (credentials/usage.ts).
  const burstWindowMs = deps.config.LATCHKEY_ALERT_BURST.windowMs;
  await deps.prisma.failureWindow.deleteMany({ where: { slot: { lt: new Date(now.getTime() - Math.max(3 * burstWindowMs, 3_600_000)) } } });
  await deps.prisma.sentReminder.deleteMany({ where: { dueAt: { lt: ago(30) } } });
}

function describe(alert: Alert, named: string): { subject: string; lines: string[] } {
  const f = alert.figures;
  switch (alert.kind) {
    case 'spike':
      return {
        subject: `unusual traffic on ${named}`,
        lines: [`${named} was checked ${f.uses} times in the hour from ${utcText(String(f.hour))}, against an hourly mean of ${f.hourlyMean} over the 24 hours before.`, 'If you do not expect this, the credential may have leaked: rotate or revoke it.'],
      };
    case 'burst':
      return {
        subject: `many failed checks of ${named}`,
        lines: [`${f.failed} checks of ${named} failed within ${Math.round(Number(f.windowMs) / 60_000)} minutes (since ${f.since}).`, 'Someone may be presenting a wrong, revoked or expired secret, or guessing one.'],
      };
    case 'new_network':
      return {
        subject: `${named} used from a new network`,
        lines: [`${named} was used from the network ${f.network}, not seen for it in the last 30 days.`, 'If this is not one of your services, rotate or revoke the credential.'],
      };
    case 'rotated_secret':
      return {
        subject: `the rotated-out secret of ${named} is still in use`,
        lines: [`${named} was rotated, but its previous secret is still being used. It stops working at ${utcText(String(f.graceEndsAt))}.`, 'Switch every service to the new secret before then.'],
      };
  }
}

/** A credential's name, team and the team's policy; null when it is gone. */
async function credentialOwner(tx: Tx, type: CredentialType, id: string): Promise<Owner | null> {
  if (type === 'api_key') {
    const key = await tx.apiKey.findUnique({ where: { id }, select: { name: true, teamId: true, revokedAt: true, suspendedAt: true, team: { select: { autoSuspendOnAlert: true } } } });
    return key && { name: key.name, teamId: key.teamId, autoSuspend: key.team?.autoSuspendOnAlert ?? false, settled: key.revokedAt !== null || key.suspendedAt !== null };
  }
  const client = await tx.oAuthClient.findUnique({ where: { id }, select: { name: true, teamId: true } });
  return client && { name: client.name, teamId: client.teamId, autoSuspend: false, settled: true };
}
