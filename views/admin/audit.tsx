import type { AuditEventView } from '../../src/audit/audit-query.ts';
import { Button, DataTable, EmptyState, ErrorSummary, Field, Form, LinkButton, PageHeader, Panel } from '../components.tsx';
import type { Chrome } from '../layout.tsx';
import { SubjectLink } from './dashboard.tsx';
import { Instant, SelectField } from './fields.tsx';
import { AdminLayout } from './layout.tsx';

/**
 * The audit log screen (issue 8 §1.2 Audit log): filters as GET parameters (a filtered view is
 * a URL to share), newest first, keyset pages ("Older events" carries the cursor), and the
 * filtered view exported as JSON Lines or CSV.
 */

/** The filter fields as typed (the URL's parameters), before parsing. */
export interface AuditFilterValues {
  actor: string;
  type: string;
  subjectType: string;
  subjectId: string;
  outcome: string;
  from: string;
  to: string;
}
export const AUDIT_FILTER_FIELDS = ['actor', 'type', 'subjectType', 'subjectId', 'outcome', 'from', 'to'] as const;

/** The audit screen's URL for these filters (empty ones left out), and more parameters (the cursor, the format). */
export function auditHref(values: Partial<AuditFilterValues>, path = '/admin/audit', extra: Record<string, string> = {}): string {
  const query = new URLSearchParams();
  for (const name of AUDIT_FILTER_FIELDS) if (values[name]) query.set(name, values[name]!);
  for (const [name, value] of Object.entries(extra)) query.set(name, value);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** An event as the screen lists it: the service's view, and the actor's email when the actor is an account. */
export interface AuditRowView extends AuditEventView {
  actorEmail: string | null;
}

const SUMMARY_MAX = 300;

/** An event's data as "key: value · …", empty values left out. Preact escapes it. */
export function dataText(data: Record<string, unknown>): string {
  return Object.entries(data)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' · ');
}

/** dataText of any event's data, cut short: the export has all of it. */
function summary(data: unknown): string {
  if (data === null || data === undefined) return '';
  const text = typeof data === 'object' && !Array.isArray(data) ? dataText(data as Record<string, unknown>) : JSON.stringify(data);
  return text.length > SUMMARY_MAX ? `${text.slice(0, SUMMARY_MAX)}…` : text;
}

// Subjects with a screen of their own beyond the detail pages (SubjectLink knows those).
const LIST_PAGES: Record<string, string> = { signing_key: '/admin/signing-keys', plan: '/admin/plans' };

function Subject(props: { type: string | null; id: string | null }) {
  if (!props.type) return <span class="muted">—</span>;
  const list = LIST_PAGES[props.type];
  if (list) {
    return (
      <a href={list}>
        {props.type.replace('_', ' ')} <code>{props.id ?? '—'}</code>
      </a>
    );
  }
  return <SubjectLink type={props.type} id={props.id} />;
}

function Actor(props: { event: AuditRowView }) {
  const e = props.event;
  if (e.actorType === 'account' && e.actorId) return <a href={`/admin/developers/${encodeURIComponent(e.actorId)}`}>{e.actorEmail ?? e.actorId}</a>;
  if (e.actorType === 'client' && e.actorId) return <SubjectLink type="client" id={e.actorId} />;
  return (
    <span>
      {e.actorType}
      {e.actorId ? <> <code>{e.actorId}</code></> : null}
    </span>
  );
}

function Outcome(props: { outcome: string }) {
  return <span class={`badge ${props.outcome === 'failure' ? 'badge-red' : 'badge-green'}`}>{props.outcome}</span>;
}

export function AuditPage(props: {
  chrome: Chrome;
  values: AuditFilterValues;
  errors: Record<string, string>;
  /** null when the filters were refused: nothing was read. */
  events: AuditRowView[] | null;
  /** The cursor of the next (older) page, when there is one. */
  older: string | null;
  /** This page is not the newest one. */
  paged: boolean;
}) {
  const { values, errors, events } = props;
  const filtered = AUDIT_FILTER_FIELDS.some((name) => values[name]);
  return (
    <AdminLayout chrome={props.chrome} title="Audit log">
      <PageHeader
        title="Audit log"
        description="Every change and every refused attempt, newest first. Filter, then share the address or export what you see."
        actions={
          events !== null ? (
            <>
              <LinkButton variant="secondary" href={auditHref(values, '/admin/audit/export', { format: 'jsonl' })}>
                Export JSON Lines
              </LinkButton>
              <LinkButton variant="secondary" href={auditHref(values, '/admin/audit/export', { format: 'csv' })}>
                Export CSV
              </LinkButton>
            </>
          ) : null
        }
      />
      <ErrorSummary errors={errors} />
      <Panel id="filters" title="Filters">
        <Form action="/admin/audit" csrf={props.chrome.csrf} method="get">
          <div class="filters">
            <Field label="Actor" name="actor" value={values.actor} error={errors.actor} maxLength={200} hint="Email, account id or client id." />
            <Field label="Event type" name="type" value={values.type} error={errors.type} maxLength={1000} hint="Comma-separated, e.g. api_key.revoked." />
            <Field label="Subject type" name="subjectType" value={values.subjectType} error={errors.subjectType} maxLength={100} hint="e.g. api_key, client, team." />
            <Field label="Subject id" name="subjectId" value={values.subjectId} error={errors.subjectId} maxLength={200} hint="e.g. a key id, without lk_." />
            <SelectField
              label="Outcome"
              name="outcome"
              value={values.outcome}
              error={errors.outcome}
              options={[
                { value: '', label: 'Any' },
                { value: 'success', label: 'Success' },
                { value: 'failure', label: 'Failure (refused attempts)' },
              ]}
            />
            <Field label="From" name="from" value={values.from} error={errors.from} maxLength={40} hint="UTC, e.g. 2026-12-01 14:00." />
            <Field label="To" name="to" value={values.to} error={errors.to} maxLength={40} hint="UTC, up to (excluded)." />
          </div>
          <div class="form-actions">
            <Button>Apply filters</Button>
            {filtered ? <a href="/admin/audit">Clear filters</a> : null}
          </div>
        </Form>
      </Panel>
      {events === null ? null : events.length === 0 ? (
        <EmptyState title={props.paged ? 'No older events match' : filtered ? 'No events match these filters' : 'No audit events yet'}>
          {filtered ? (
            <p>
              Widen the time range or <a href="/admin/audit">clear the filters</a>.
            </p>
          ) : null}
        </EmptyState>
      ) : (
        <>
          <DataTable head={['Time', 'Event', 'Actor', 'Subject', 'Details']} class="audit-table" region="Audit events">
            {events.map((e) => (
              <tr>
                <td class="nowrap">
                  <Instant at={e.at} />
                  <span class="muted small block">#{e.seq}</span>
                </td>
                <td>
                  <code>{e.type}</code>
                  <span class="block">
                    <Outcome outcome={e.outcome} />
                  </span>
                </td>
                <td class="audit-who">
                  <Actor event={e} />
                </td>
                <td class="audit-who">
                  <Subject type={e.subjectType} id={e.subjectId} />
                </td>
                <td class="small audit-data">
                  {summary(e.data) || <span class="muted">—</span>}
                  {e.requestId ? (
                    <span class="muted block">
                      request <code>{e.requestId}</code>
                    </span>
                  ) : null}
                </td>
              </tr>
            ))}
          </DataTable>
        </>
      )}
      {props.paged || props.older ? (
        <nav class="pager" aria-label="Pages">
          {props.paged ? <a href={auditHref(values)}>Newest events</a> : <span />}
          {props.older ? <a href={auditHref(values, '/admin/audit', { older: props.older })}>Older events</a> : <span />}
        </nav>
      ) : null}
    </AdminLayout>
  );
}
