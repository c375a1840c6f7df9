import { Readable } from 'node:stream';
import { AUDIT_FILTER_FIELDS, AuditPage, auditHref, type AuditFilterValues } from '../../../views/admin/audit.tsx';
import { normaliseEmail } from '../../accounts/accounts.ts';
import { actorEmails } from '../../admin/events.ts';
import { recordAuditExport } from '../../audit/audit-export.ts';
import { auditFilterSchema, exportAuditLines, queryAuditEvents, streamAuditEvents, type AuditExportFormat, type AuditFilter } from '../../audit/audit-query.ts';
import type { Deps } from '../../context.ts';
import { InvalidRequest } from '../../lib/errors.ts';
import { parseForm, textOf, type FieldErrors } from '../form.ts';
import { actorOf, type PageContext } from '../page-state.ts';
import { renderErrorPage, sameOrigin, type PageRoutes } from '../pages.ts';
import { chrome, renderPage } from '../render.ts';
import { adminReader } from './guard.ts';

// The audit log screen and its export (issue 8 §1.2 Audit log). Reads only: admins and
// auditors alike (adminReader). Every page is the service's keyset query (audit-query.ts:
// an index range ending in seq, newest first, `older` as the cursor; no COUNT, no OFFSET), so
// the first and the deepest page cost the same at 10 million events (bench/audit.ts).

const TIME_HINT = 'Enter a UTC time such as 2026-12-01 or 2026-12-01 14:00.';
/** What to do about a refused field, beside it (the schema's own words are the CLI's). */
const FIELD_MESSAGES: Record<string, string> = {
  actor: "Enter an account's email or id, or a client id (at most 200 characters).",
  type: 'Give 1 to 50 event types separated by commas, e.g. api_key.revoked,client.revoked.',
  subjectType: 'Use at most 100 characters, e.g. api_key.',
  subjectId: 'Use at most 200 characters.',
  outcome: 'Choose Any, Success or Failure.',
  from: TIME_HINT,
  to: TIME_HINT,
};
const CURSOR = /^\d{1,19}$/;
const FORMATS: Record<AuditExportFormat, { type: string; extension: string }> = {
  jsonl: { type: 'application/x-ndjson; charset=utf-8', extension: 'jsonl' },
  csv: { type: 'text/csv; charset=utf-8', extension: 'csv' },
};

const valuesOf = (ctx: PageContext): AuditFilterValues =>
  Object.fromEntries(AUDIT_FILTER_FIELDS.map((name) => [name, textOf(ctx.query[name] as string | string[] | undefined).trim().slice(0, 1000)])) as unknown as AuditFilterValues;

/**
 * A time as people type it, or copy it from the screen ("2026-12-01 14:03:07 UTC"): the date
 * and time joined by T, and UTC unless the text names a zone (the server's own zone must not decide).
 */
function instantText(text: string): string {
  const iso = text.replace(/ UTC$/i, 'Z').replace(/^(\d{4}-\d{2}-\d{2}) (\d)/, '$1T$2');
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(iso) ? `${iso}Z` : iso;
}

type Parsed = { ok: true; filter: AuditFilter } | { ok: false; errors: FieldErrors };

/** The filters of the query string, parsed with the service's schema (the CLI's too); an email as actor is the account's id. */
async function parseFilter(deps: Deps, values: AuditFilterValues): Promise<Parsed> {
  const input: Record<string, string> = {};
  for (const name of AUDIT_FILTER_FIELDS) if (values[name]) input[name] = name === 'from' || name === 'to' ? instantText(values[name]) : values[name];
  const errors: FieldErrors = {};
  if (input.actor?.includes('@')) {
    const account = await deps.prisma.account.findUnique({ where: { email: normaliseEmail(input.actor.slice(0, 320)) }, select: { id: true } });
    if (account) input.actor = account.id;
    else errors.actor = 'No account has this email. Check it, or give the account id.';
  }
  const parsed = parseForm(auditFilterSchema, input);
  if (!parsed.ok) {
    for (const [field, message] of Object.entries(parsed.errors)) {
      // The schema's cross-field rule (from before to) is reported on `to`.
      errors[field] ??= field === 'to' && message.includes('--from') ? 'The end must be after the start.' : (FIELD_MESSAGES[field] ?? message);
    }
  }
  return Object.keys(errors).length > 0 || !parsed.ok ? { ok: false, errors } : { ok: true, filter: parsed.value };
}

export const auditRoutes: PageRoutes = (router, deps) => {
  router.get('/audit', adminReader, async (ctx) => {
    const values = valuesOf(ctx);
    const older = textOf(ctx.query.older as string | string[] | undefined);
    // The filter form sends every field, empty ones too: the address to share names only those in use.
    if (Object.values(ctx.query).some((value) => value === '')) return ctx.redirect(auditHref(values, '/admin/audit', older ? { older } : {}));
    const render = (props: { errors?: FieldErrors; events?: Parameters<typeof AuditPage>[0]['events']; older?: string | null }, status = 200) =>
      renderPage(
        ctx,
        <AuditPage chrome={chrome(ctx, 'admin-audit')} values={values} errors={props.errors ?? {}} events={props.events ?? null} older={props.older ?? null} paged={older !== ''} />,
        status,
      );
    const parsed = await parseFilter(deps, values);
    if (!parsed.ok) return render({ errors: parsed.errors }, 400);
    if (older !== '' && !(CURSOR.test(older) && BigInt(older) < 2n ** 63n)) {
      return render({ errors: { older: 'That page address is broken. Apply the filters again to start from the newest events.' } }, 400);
    }
    const page = await queryAuditEvents(deps, parsed.filter, older ? { older } : {});
    const emails = await actorEmails(deps, page.events);
    render({ events: page.events.map((e) => ({ ...e, actorEmail: e.actorId ? (emails.get(e.actorId) ?? null) : null })), older: page.older ?? null });
  });

  // The filtered view as a file, streamed a keyset page at a time (never built in memory).
  router.get('/audit/export', adminReader, async (ctx) => {
    // The export records an event (below), so another site must not be able to start one in
    // an admin's name: a top-level cross-site GET carries the session cookie (SameSite=lax).
    if (!sameOrigin(ctx, deps.config.LATCHKEY_ISSUER)) {
      deps.log.info({ requestId: ctx.state.requestId, path: ctx.path }, 'audit export refused: started from another site');
      return renderErrorPage(ctx, 403, 'Start the export from the audit log page.');
    }
    // JSON Lines unless asked otherwise: the format that keeps every field as it is stored.
    const format = textOf(ctx.query.format as string | string[] | undefined) || 'jsonl';
    if (format !== 'jsonl' && format !== 'csv') throw new InvalidRequest('choose the export format: JSON Lines (format=jsonl) or CSV (format=csv)');
    const values = valuesOf(ctx);
    const parsed = await parseFilter(deps, values);
    if (!parsed.ok) {
      return renderPage(ctx, <AuditPage chrome={chrome(ctx, 'admin-audit')} values={values} errors={parsed.errors} events={null} older={null} paged={false} />, 400);
    }
    // Audited before anything is read: no copy leaves untraced (a failed write is an error page).
    await recordAuditExport(deps, actorOf(ctx), format, parsed.filter);
    // The first page is read before the answer starts: a database that cannot be reached is
    // then the usual 503 page, not a 200 download that breaks off.
    const events = streamAuditEvents(deps, parsed.filter);
    const first = await events.next();
    const all = async function* () {
      if (!first.done) yield first.value;
      yield* events;
    };
    const stamp = deps.now().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
    ctx.status = 200;
    ctx.type = FORMATS[format].type;
    ctx.set('Content-Disposition', `attachment; filename="latchkey-audit-${stamp}.${FORMATS[format].extension}"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = Readable.from(exportAuditLines(all(), format));
  });
};
