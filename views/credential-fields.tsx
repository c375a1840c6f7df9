import type { ComponentChildren } from 'preact';
import type { ApiKeyView } from '../src/credentials/presenters.ts';
import { Badge, Choices, Field, Time, type Choice } from './components.tsx';

/** Form and detail pieces shared by the key and application pages. */

/** What a credential request asks for, in words. */
export const KIND_LABEL: Record<string, string> = { api_key: 'API key', client: 'Application' };

/** A scope of the catalog as the forms offer it. */
export interface ScopeOption {
  name: string;
  description: string;
  requiresApproval: boolean;
}

/** An API of the catalog with its grantable (not retired) scopes. */
export interface ApiOption {
  name: string;
  audience: string;
  description: string;
  scopes: ScopeOption[];
}

/** What the New API key and New application forms offer: scopes grouped by API, then the global ones. */
export interface ScopeCatalog {
  apis: ApiOption[];
  /** Scopes that belong to no API. */
  global: ScopeOption[];
  /** Retired scope names: refused with their own message if posted. */
  retired: string[];
}

export const scopeChoices = (catalog: ScopeOption[], chosen: string[]): Choice[] =>
  catalog.map((scope) => ({
    value: scope.name,
    label: scope.requiresApproval ? `${scope.name} (requires approval)` : scope.name,
    description: scope.description,
    checked: chosen.includes(scope.name),
  }));

/**
 * The scope checkboxes of a credential form (DESIGN §2: one checkbox per scope, labelled with
 * its name). Without APIs in the catalog: one group, and a free Audiences field. With APIs: a
 * group per API (its scopes decide the credential's audience), then the global scopes.
 */
export function ScopeFields(props: {
  catalog: ScopeCatalog;
  chosen: string[];
  errors: Record<string, string | undefined>;
  hint: string;
  /** For the empty-catalog note: what the credential does without scope. */
  withoutScope: string;
  /** For the audience hints: "this key", "its tokens". */
  what: string;
  audiences: string;
  defaultAudience: string;
}) {
  const { catalog, chosen, errors } = props;
  if (catalog.apis.length === 0) {
    return (
      <>
        {catalog.global.length > 0 ? (
          <Choices legend="Scopes" name="scopes" type="checkbox" choices={scopeChoices(catalog.global, chosen)} error={errors.scopes} hint={props.hint} />
        ) : (
          <NoScopesNote what={props.withoutScope} />
        )}
        <AudiencesField value={props.audiences} error={errors.audiences} defaultAudience={props.defaultAudience} what={props.what} />
      </>
    );
  }
  // Checkbox ids run on across the groups: field-scopes-0, -1, … (one id space per form field).
  let index = 0;
  const group = (scopes: ScopeOption[]) =>
    scopeChoices(scopes, chosen).map((choice) => {
      const id = `field-scopes-${index++}`;
      return (
        <div class="choice">
          <input type="checkbox" id={id} name="scopes" value={choice.value} checked={choice.checked} />
          <label for={id}>
            <span class="choice-label">{choice.label}</span>
            {choice.description ? <span class="choice-description">{choice.description}</span> : null}
          </label>
        </div>
      );
    });
  return (
    <fieldset class={errors.scopes ? 'field field-invalid' : 'field'} id="field-scopes" aria-describedby={errors.scopes ? 'field-scopes-error' : undefined}>
      <legend>Scopes</legend>
      <p class="hint">
        {props.hint} Choosing a scope of an API makes {props.what} valid for that API (its audience); global scopes alone: <code>{props.defaultAudience}</code>.
      </p>
      {catalog.apis.map((api) => (
        <fieldset class="scope-group">
          <legend>{api.name}</legend>
          <p class="hint">
            {api.description ? `${api.description} ` : null}Audience <code>{api.audience}</code>
          </p>
          {api.scopes.length === 0 ? <p class="hint">No scopes to choose yet.</p> : group(api.scopes)}
        </fieldset>
      ))}
      {catalog.global.length > 0 ? (
        <fieldset class="scope-group">
          <legend>Other scopes</legend>
          <p class="hint">Not tied to one API.</p>
          {group(catalog.global)}
        </fieldset>
      ) : null}
      {errors.scopes ? (
        <p class="field-error" id="field-scopes-error">
          {errors.scopes}
        </p>
      ) : null}
    </fieldset>
  );
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Stripe's "roll key": when the old credential stops working. One table for the label the form
 * shows and the duration the route applies.
 */
export const GRACE_CHOICES = [
  { value: 'now', label: 'Now', ms: 0 },
  { value: '1h', label: '1 hour', ms: HOUR },
  { value: '24h', label: '24 hours', ms: DAY },
  { value: '7d', label: '7 days', ms: 7 * DAY },
] as const;

/** GitHub's token expiry choices; `ms` undefined: no expiry. */
export const EXPIRY_CHOICES = [
  { value: '7d', label: '7 days', ms: 7 * DAY },
  { value: '30d', label: '30 days', ms: 30 * DAY },
  { value: '90d', label: '90 days', ms: 90 * DAY },
  { value: '1y', label: '1 year', ms: 365 * DAY },
  { value: 'never', label: 'No expiry', ms: undefined },
] as const;

export const graceChoices = (chosen: string): Choice[] => GRACE_CHOICES.map((c) => ({ value: c.value, label: c.label, checked: c.value === chosen }));
export const expiryChoices = (chosen: string): Choice[] => EXPIRY_CHOICES.map((c) => ({ value: c.value, label: c.label, checked: c.value === chosen }));

/** In place of the scope checkboxes while the catalog is empty (a fresh install). */
export function NoScopesNote(props: { what: string }) {
  return (
    <div class="field" id="field-scopes">
      <p>
        <strong>Scopes</strong>
      </p>
      <p class="hint">
        No scopes are defined yet: {props.what} but grant no scope. An admin adds scopes with <code>latchkey scope create</code>.
      </p>
    </div>
  );
}

/** A credential's scopes; `retired` ones carry a warning (they last until the credential is rotated). */
export function Scopes(props: { scopes: string[]; retired?: string[] }) {
  if (props.scopes.length === 0) return <span class="muted">none</span>;
  return (
    <span>
      {props.scopes.map((scope, i) => (
        <>
          {i > 0 ? ' ' : null}
          <code class="scope">{scope}</code>
          {props.retired?.includes(scope) ? (
            <>
              {' '}
              <span class="badge badge-amber">retired</span>
            </>
          ) : null}
        </>
      ))}
    </span>
  );
}

/** On a rotation's confirmation: the retired scopes the rotation takes away. */
export function DroppedScopes(props: { scopes: string[] }) {
  if (props.scopes.length === 0) return null;
  return (
    <>
      {' '}
      {props.scopes.length === 1 ? 'The retired scope ' : 'The retired scopes '}
      {props.scopes.map((scope, i) => (
        <>
          {i > 0 ? ', ' : null}
          <code>{scope}</code>
        </>
      ))}{' '}
      {props.scopes.length === 1 ? 'is' : 'are'} not carried over.
    </>
  );
}

/** Beside a credential's scopes when some are retired: what that means for it. */
export function RetiredScopesWarning(props: { retired: string[]; kind: 'key' | 'application' }) {
  if (props.retired.length === 0) return null;
  const one = props.retired.length === 1;
  const names = props.retired.map((scope, i) => (
    <>
      {i > 0 ? ', ' : null}
      <code>{scope}</code>
    </>
  ));
  return (
    <p class="warning" role="note">
      <strong>{one ? 'Retired scope' : 'Retired scopes'}:</strong> {names} can no longer be granted. {one ? 'It keeps' : 'They keep'} working{' '}
      {props.kind === 'key'
        ? `on this key until it is rotated; the new key will not have ${one ? 'it' : 'them'}.`
        : `for this application until its secret is rotated, which removes ${one ? 'it' : 'them'}.`}
    </p>
  );
}

export function AudiencesField(props: { value: string; error?: string; defaultAudience: string; what: string }) {
  return (
    <Field
      label="Audiences"
      name="audiences"
      value={props.value}
      error={props.error}
      maxLength={2000}
      hint={
        <>
          Optional: the URLs of the APIs that accept {props.what}, separated by spaces. Empty: <code>{props.defaultAudience}</code>.
        </>
      }
    />
  );
}

/** A credential's audiences; none means any (the aud claim is not restricted). */
export function Audiences(props: { audiences: string[] }) {
  return <>{props.audiences.length ? props.audiences.join(', ') : <span class="muted">any</span>}</>;
}

/**
 * An API key's facts, the same on its portal page and its admin page. `pages` is where the key
 * pages of this reader live (for the successor's link); `team` the rows the admin page adds after
 * the key id; `retired` the retired scopes the portal warns about; `children` the rows after.
 */
export function KeyFacts(props: { apiKey: ApiKeyView; now: Date; pages: '/portal/keys' | '/admin/keys'; team?: ComponentChildren; retired?: string[]; children?: ComponentChildren }) {
  const { apiKey: key, now } = props;
  return (
    <dl class="details">
      <dt>Status</dt>
      <dd>
        <Badge status={key.status} />
        {key.graceEndsAt ? (
          <span>
            {' '}
            until <Time at={key.graceEndsAt} now={now} />
          </span>
        ) : null}
      </dd>
      <dt>Key id</dt>
      <dd>
        <code>{key.prefix}</code>
      </dd>
      {props.team}
      <dt>Scopes</dt>
      <dd>
        <Scopes scopes={key.scopes} retired={props.retired} />
        {props.retired ? <RetiredScopesWarning retired={props.retired} kind="key" /> : null}
      </dd>
      <dt>Audiences</dt>
      <dd>
        <Audiences audiences={key.audiences} />
      </dd>
      <dt>Created</dt>
      <dd>
        <Time at={key.createdAt} now={now} />
      </dd>
      <dt>Expires</dt>
      <dd>
        <Time at={key.expiresAt} now={now} never="no expiry" />
      </dd>
      {key.replacedById ? (
        <>
          <dt>Replaced by</dt>
          <dd>
            <a href={`${props.pages}/${key.replacedById}`}>
              <code>lk_{key.replacedById}</code>
            </a>
          </dd>
        </>
      ) : null}
      {props.children}
    </dl>
  );
}
