import { Field, type Choice } from './components.tsx';

/** Form and detail pieces shared by the key and application pages. */

/** A scope of the catalog as the forms offer it. */
export interface ScopeOption {
  name: string;
  description: string;
  requiresApproval: boolean;
}

export const scopeChoices = (catalog: ScopeOption[], chosen: string[]): Choice[] =>
  catalog.map((scope) => ({
    value: scope.name,
    label: scope.requiresApproval ? `${scope.name} (requires approval)` : scope.name,
    description: scope.description,
    checked: chosen.includes(scope.name),
  }));

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

export function Scopes(props: { scopes: string[] }) {
  if (props.scopes.length === 0) return <span class="muted">none</span>;
  return (
    <span>
      {props.scopes.map((scope, i) => (
        <>
          {i > 0 ? ' ' : null}
          <code class="scope">{scope}</code>
        </>
      ))}
    </span>
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
