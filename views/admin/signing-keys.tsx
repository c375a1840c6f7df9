import type { SigningKeyView } from '../../src/signing/signing-keys.ts';
import { Button, DataTable, EmptyState, Field, Form, PageHeader, Panel, Time } from '../components.tsx';
import type { Chrome } from '../layout.tsx';
import { StackedTime } from './fields.tsx';
import { AdminLayout } from './layout.tsx';

/** The signing keys screen (issue 8 §1.2 Signing keys, §1.4): every key's life cycle, and Rotate now. */

const STATE_BADGE: Record<string, string> = { next: 'badge-blue', current: 'badge-green', retired: 'badge-amber', removed: 'badge-grey' };
const STATE_HINT: Record<string, string> = {
  next: 'published, signs from its activation',
  current: 'signs every new token',
  retired: 'still published, so the tokens it signed keep verifying until they expire',
  removed: 'no longer published',
};

/** "1 hour", "30 days", "90 minutes": a configured window in words. */
export function durationText(ms: number): string {
  const units: [string, number][] = [
    ['day', 86_400_000],
    ['hour', 3_600_000],
    ['minute', 60_000],
    ['second', 1_000],
  ];
  const [unit, size] = units.find(([, s]) => ms >= s && ms % s === 0) ?? ['second', 1_000];
  const n = Math.round(ms / size);
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

export function SigningKeysPage(props: {
  chrome: Chrome;
  now: Date;
  keys: SigningKeyView[];
  canAct: boolean;
  /** LATCHKEY_JWKS_CACHE_TTL and LATCHKEY_SIGNING_ROTATION. */
  prePublicationMs: number;
  rotationMs: number;
  reason?: { value: string; error: string };
}) {
  const { keys, now } = props;
  const next = keys.find((k) => k.state === 'next');
  const current = keys.find((k) => k.state === 'current');
  return (
    <AdminLayout chrome={props.chrome} title="Signing keys">
      <PageHeader
        title="Signing keys"
        description={`The keys that sign access tokens. A new key is published in JWKS ${durationText(props.prePublicationMs)} before it signs, and a retired one stays published until every token it signed has expired. Keys rotate every ${durationText(props.rotationMs)}.`}
      />
      {keys.length === 0 ? (
        <EmptyState title="No signing key yet">
          <p>The server creates the first one when it starts.</p>
        </EmptyState>
      ) : (
        <DataTable head={['Key id (kid)', 'Algorithm', 'State', 'Created (UTC)', 'Activates (UTC)', 'Retires (UTC)', 'Leaves JWKS (UTC)']} region="Signing keys">
          {keys.map((k) => (
            <tr>
              <td class="kid-cell">
                <code class="kid">{k.kid}</code>
              </td>
              <td>{k.alg}</td>
              <td>
                <span class={`badge ${STATE_BADGE[k.state] ?? 'badge-grey'}`}>{k.state}</span>
              </td>
              <td class="nowrap">
                <StackedTime at={k.createdAt} now={now} bare />
              </td>
              <td class="nowrap">
                <StackedTime at={k.activatesAt} now={now} bare />
              </td>
              <td class="nowrap">
                <StackedTime at={k.retiresAt} now={now} never="—" bare />
              </td>
              <td class="nowrap">
                <StackedTime at={k.removesAt} now={now} never="—" bare />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <p class="hint table-note">
        {Object.entries(STATE_HINT).map(([state, hint], i) => (
          <>
            {i > 0 ? ' · ' : null}
            <strong>{state}</strong>: {hint}
          </>
        ))}
        .
      </p>
      {next ? (
        <p class="warning" role="note">
          A rotation is under way: key <code>{next.kid}</code> is published and becomes current at <Time at={next.activatesAt} now={now} />. Another rotation can start after that.
        </p>
      ) : null}
      {props.canAct && !next && current ? (
        <Panel id="rotate" title="Rotate now">
          <p>
            Publishes a new key now; it starts signing after {durationText(props.prePublicationMs)}, once every resource server has seen it. Key <code>{current.kid}</code> then retires and keeps
            verifying its tokens until they expire: no valid token is refused.
          </p>
          <Form action="/admin/signing-keys/rotate" csrf={props.chrome.csrf}>
            <Field label="Reason" name="reason" value={props.reason?.value} error={props.reason?.error} maxLength={500} required hint="Required; kept in the audit log with your name." />
            <div class="form-actions">
              <Button>Rotate now</Button>
            </div>
          </Form>
        </Panel>
      ) : null}
      <p>
        <a href="/admin/audit?subjectType=signing_key">Signing key events in the audit log</a>
      </p>
    </AdminLayout>
  );
}
