import { FieldFrame, relativeHint } from '../components.tsx';
import { utcText } from '../../src/lib/utc-text.ts';

/** A labelled select, with its hint and its error beside it like Field's (views/components.tsx). */
export function SelectField(props: { label: string; name: string; id?: string; value: string; options: { value: string; label: string }[]; hint?: string; error?: string }) {
  const id = props.id ?? `field-${props.name}`;
  return (
    <FieldFrame id={id} label={props.label} hint={props.hint} error={props.error}>
      {(described) => (
        <select id={id} name={props.name} aria-invalid={props.error ? 'true' : undefined} aria-describedby={described}>
          {props.options.map((option) => (
            <option value={option.value} selected={option.value === props.value}>
              {option.label}
            </option>
          ))}
        </select>
      )}
    </FieldFrame>
  );
}

/** "2026-12-01 14:03:07 UTC": an instant to the second, for logs where minutes are too coarse. */
export function Instant(props: { at: Date | string }) {
  const iso = (typeof props.at === 'string' ? new Date(props.at) : props.at).toISOString();
  return <time dateTime={iso}>{`${iso.slice(0, 19).replace('T', ' ')} UTC`}</time>;
}

/** Time's ISO form with its relative hint on a line of its own, for narrow table columns. */
export function StackedTime(props: { at: Date | null; now: Date; never?: string; /** Leave out " UTC" when the column's header says it. */ bare?: boolean }) {
  if (!props.at) return <span class="muted">{props.never ?? 'never'}</span>;
  const iso = props.at.toISOString();
  return (
    <>
      <time dateTime={iso}>{props.bare ? utcText(props.at).slice(0, -4) : utcText(props.at)}</time>
      <span class="muted small block">{relativeHint(props.at, props.now)}</span>
    </>
  );
}
