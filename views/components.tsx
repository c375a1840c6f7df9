import type { ComponentChildren } from 'preact';
import { utcText } from '../src/lib/utc-text.ts';
import { Layout, type Chrome } from './layout.tsx';

/** The anti-CSRF token every form carries (src/web/csrf.ts checks it with the Origin). */
export function Form(props: { action: string; csrf: string; children: ComponentChildren; class?: string; method?: 'post' | 'get'; id?: string }) {
  const method = props.method ?? 'post';
  return (
    <form method={method} action={props.action} class={props.class} id={props.id} noValidate>
      {method === 'post' ? <input type="hidden" name="_csrf" value={props.csrf} /> : null}
      {props.children}
    </form>
  );
}

export interface FieldProps {
  label: string;
  name: string;
  /** The input's id when a page has two fields of one name (several forms); `field-<name>` by default. */
  id?: string;
  type?: 'text' | 'email' | 'password' | 'search' | 'number' | 'url';
  value?: string;
  /** Shown beside the field and announced with it (aria-describedby). */
  error?: string;
  hint?: ComponentChildren;
  autocomplete?: string;
  required?: boolean;
  maxLength?: number;
  inputMode?: 'numeric' | 'text' | 'email';
  autofocus?: boolean;
}

/**
 * A field's frame: its label, its hint and its error around the control, which is given the ids
 * to announce them with (aria-describedby). Field, SelectField and text areas share it.
 */
export function FieldFrame(props: { id: string; label: string; hint?: ComponentChildren; error?: string; children: (describedBy: string | undefined) => ComponentChildren }) {
  const { id } = props;
  const described = [props.hint ? `${id}-hint` : '', props.error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class={props.error ? 'field field-invalid' : 'field'}>
      <label for={id}>{props.label}</label>
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
      {props.children(described)}
      {props.error ? (
        <p class="field-error" id={`${id}-error`}>
          {props.error}
        </p>
      ) : null}
    </div>
  );
}

export function Field(props: FieldProps) {
  const id = props.id ?? `field-${props.name}`;
  return (
    <FieldFrame id={id} label={props.label} hint={props.hint} error={props.error}>
      {(described) => (
        <input
          id={id}
          name={props.name}
          type={(props.type ?? 'text') as 'text'}
          value={props.value}
          autocomplete={props.autocomplete}
          required={props.required}
          maxLength={props.maxLength}
          inputMode={props.inputMode}
          autofocus={props.autofocus}
          aria-invalid={props.error ? 'true' : undefined}
          aria-describedby={described}
        />
      )}
    </FieldFrame>
  );
}

export interface Choice {
  value: string;
  label: string;
  description?: string;
  checked?: boolean;
}

/** A group of checkboxes (scopes) or radios (grace windows), each labelled with its own text. */
export function Choices(props: { legend: string; name: string; type: 'checkbox' | 'radio'; choices: Choice[]; error?: string; hint?: string }) {
  const id = `field-${props.name}`;
  return (
    <fieldset class={props.error ? 'field field-invalid' : 'field'} aria-describedby={props.error ? `${id}-error` : undefined}>
      <legend>{props.legend}</legend>
      {props.hint ? <p class="hint">{props.hint}</p> : null}
      {props.choices.length === 0 ? <p class="hint">Nothing to choose from yet.</p> : null}
      {props.choices.map((choice, i) => (
        <div class="choice">
          <input type={props.type} id={`${id}-${i}`} name={props.name} value={choice.value} checked={choice.checked} />
          <label for={`${id}-${i}`}>
            <span class="choice-label">{choice.label}</span>
            {choice.description ? <span class="choice-description">{choice.description}</span> : null}
          </label>
        </div>
      ))}
      {props.error ? (
        <p class="field-error" id={`${id}-error`}>
          {props.error}
        </p>
      ) : null}
    </fieldset>
  );
}

export function Button(props: { children: ComponentChildren; variant?: 'primary' | 'secondary' | 'danger'; name?: string; value?: string }) {
  return (
    <button type="submit" class={`button button-${props.variant ?? 'primary'}`} name={props.name} value={props.value}>
      {props.children}
    </button>
  );
}

export function LinkButton(props: { href: string; children: ComponentChildren; variant?: 'primary' | 'secondary' }) {
  return (
    <a class={`button button-${props.variant ?? 'primary'}`} href={props.href}>
      {props.children}
    </a>
  );
}

export interface FlashMessage {
  kind: 'success' | 'error' | 'info';
  text: string;
}

export function Flash(props: { flash?: FlashMessage | null }) {
  if (!props.flash) return null;
  return (
    <div class={`flash flash-${props.flash.kind}`} role={props.flash.kind === 'error' ? 'alert' : 'status'}>
      {props.flash.text}
    </div>
  );
}

/** A form-level error summary (the field messages sit beside each field). */
export function ErrorSummary(props: { errors?: Record<string, string | undefined> }) {
  const messages = Object.values(props.errors ?? {}).filter(Boolean);
  if (messages.length === 0) return null;
  return (
    <div class="flash flash-error" role="alert">
      {messages.length === 1 ? messages[0] : 'Please correct the fields marked below.'}
    </div>
  );
}

export function PageHeader(props: { title: string; description?: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <div class="page-header">
      <div>
        <h1>{props.title}</h1>
        {props.description ? <p class="lead">{props.description}</p> : null}
      </div>
      {props.actions ? <div class="page-actions">{props.actions}</div> : null}
    </div>
  );
}

/** A titled panel: its heading names the section (aria-labelledby `<id>-heading`); danger for one-way actions. */
export function Panel(props: { id: string; title: ComponentChildren; danger?: boolean; children: ComponentChildren }) {
  return (
    <section class={props.danger ? 'panel panel-danger' : 'panel'} aria-labelledby={`${props.id}-heading`}>
      <h2 id={`${props.id}-heading`}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function EmptyState(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{props.title}</p>
      {props.children}
    </div>
  );
}

const BADGES: Record<string, string> = {
  active: 'badge-green',
  valid: 'badge-green',
  approved: 'badge-green',
  owner: 'badge-blue',
  member: 'badge-grey',
  pending: 'badge-amber',
  expiring: 'badge-amber',
  'rotating out': 'badge-amber',
  revoked: 'badge-red',
  denied: 'badge-red',
  expired: 'badge-grey',
  suspended: 'badge-red',
  ended: 'badge-grey',
};

export function Badge(props: { status: string }) {
  return <span class={`badge ${BADGES[props.status] ?? 'badge-grey'}`}>{props.status}</span>;
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400_000],
  ['month', 30 * 86_400_000],
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];
const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 hours ago", "in 2 days", "just now": the hint beside an instant (Time, StackedTime). */
export function relativeHint(at: Date, now: Date): string {
  const diff = at.getTime() - now.getTime();
  const [unit, size] = UNITS.find(([, ms]) => Math.abs(diff) >= ms) ?? ['minute', 60_000];
  return Math.abs(diff) < 60_000 ? 'just now' : relative.format(Math.round(diff / size), unit);
}

/** "2026-12-01 14:03 UTC, 3 hours ago": ISO form with a relative hint (STYLE.md, Pages). */
export function Time(props: { at: Date | null | undefined; now: Date; never?: string }) {
  if (!props.at) return <span class="muted">{props.never ?? 'never'}</span>;
  const iso = props.at.toISOString();
  return (
    <time dateTime={iso}>
      {utcText(props.at)}<span class="muted">, {relativeHint(props.at, props.now)}</span>
    </time>
  );
}

/** A secret shown once, with a copy button that works where scripts run (the page works without). */
export function SecretOnce(props: { label: string; value: string; id: string }) {
  return (
    <div class="secret">
      <label for={props.id}>{props.label}</label>
      <div class="secret-row">
        <input id={props.id} class="secret-value" type="text" readOnly value={props.value} spellcheck={false} autocomplete="off" />
        <button type="button" class="button button-secondary copy" data-copy={props.id}>
          Copy
        </button>
      </div>
    </div>
  );
}

/**
 * A table in its scrolling wrapper, one header cell per column (null: a column this reader does
 * not get); the rows are the caller's. `region` names a wide table: its wrapper becomes a named,
 * focusable region so keyboard users can scroll it.
 */
export function DataTable(props: { head: (string | null)[]; class?: string; labelledBy?: string; region?: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" role={props.region ? 'region' : undefined} aria-label={props.region} tabIndex={props.region ? 0 : undefined}>
      <table class={props.class} aria-labelledby={props.labelledBy} aria-label={props.region}>
        <thead>
          <tr>{props.head.map((h) => (h === null ? null : <th scope="col">{h}</th>))}</tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

/**
 * Things that happened, newest first: a When column (Time), then the caller's cells for each row.
 * `nowrap` keeps the time on one line where the other cells are long.
 */
export function EventsTable<T extends { at: Date }>(props: { head: string[]; rows: T[]; now: Date; nowrap?: boolean; cells: (row: T) => ComponentChildren }) {
  return (
    <DataTable head={['When', ...props.head]}>
      {props.rows.map((row) => (
        <tr>
          <td class={props.nowrap ? 'nowrap' : undefined}>
            <Time at={row.at} now={props.now} />
          </td>
          {props.cells(row)}
        </tr>
      ))}
    </DataTable>
  );
}

/** Tabs over a list (e.g. Active / Revoked), each with its count; the current one marked for assistive tech. */
export function ListTabs(props: { label: string; tabs: { href: string; label: string; count: number; current: boolean }[] }) {
  return (
    <nav class="tabs" aria-label={props.label}>
      {props.tabs.map((tab) => (
        <a href={tab.href} aria-current={tab.current ? 'page' : undefined}>
          {tab.label} <span class="count">{tab.count}</span>
        </a>
      ))}
    </nav>
  );
}

/** Newer/older links under a paged list, shown only when there is more than one page. */
export function Pager(props: { page: number; newer: { href: string; label: string } | null; older: { href: string; label: string } | null }) {
  if (!props.newer && !props.older) return null;
  return (
    <nav class="pager" aria-label="Pages">
      {props.newer ? <a href={props.newer.href}>{props.newer.label}</a> : <span />}
      <span class="muted small">Page {props.page}</span>
      {props.older ? <a href={props.older.href}>{props.older.label}</a> : <span />}
    </nav>
  );
}

/**
 * The second step of a destructive or one-way action (STYLE "Pages"): a sentence naming what
 * will happen, and a button with the same name as the first step's, posting the same form
 * again with `confirm=yes` and the first step's choices as hidden fields.
 */
export function ConfirmPage(props: {
  chrome: Chrome;
  title: string;
  description?: ComponentChildren;
  sentence: ComponentChildren;
  action: string;
  hidden?: Record<string, string>;
  button: string;
  danger?: boolean;
  cancel: string;
  /** The admin screens' navigation (views/admin/layout.tsx adminNav); the portal's by default. */
  nav?: Parameters<typeof Layout>[0]['nav'];
}) {
  return (
    <Layout chrome={props.chrome} title={props.title} nav={props.nav}>
      <PageHeader title={props.title} description={props.description} />
      <div class={props.danger ? 'panel panel-danger' : 'panel'}>
        <p>{props.sentence}</p>
        <Form action={props.action} csrf={props.chrome.csrf}>
          {Object.entries(props.hidden ?? {}).map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          <input type="hidden" name="confirm" value="yes" />
          <div class="form-actions">
            <Button variant={props.danger ? 'danger' : undefined}>{props.button}</Button>
            <a href={props.cancel}>Cancel</a>
          </div>
        </Form>
      </div>
    </Layout>
  );
}
