/** A labelled select, with its hint and its error beside it like Field's (views/components.tsx). */
export function SelectField(props: { label: string; name: string; id?: string; value: string; options: { value: string; label: string }[]; hint?: string; error?: string }) {
  const id = props.id ?? `field-${props.name}`;
  const described = [props.hint ? `${id}-hint` : '', props.error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class={props.error ? 'field field-invalid' : 'field'}>
      <label for={id}>{props.label}</label>
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
      <select id={id} name={props.name} aria-invalid={props.error ? 'true' : undefined} aria-describedby={described}>
        {props.options.map((option) => (
          <option value={option.value} selected={option.value === props.value}>
            {option.label}
          </option>
        ))}
      </select>
      {props.error ? (
        <p class="field-error" id={`${id}-error`}>
          {props.error}
        </p>
      ) : null}
    </div>
  );
}

/** "2026-12-01 14:03:07 UTC": an instant to the second, for logs where minutes are too coarse. */
export function Instant(props: { at: Date | string }) {
  const iso = (typeof props.at === 'string' ? new Date(props.at) : props.at).toISOString();
  return <time dateTime={iso}>{`${iso.slice(0, 19).replace('T', ' ')} UTC`}</time>;
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400_000],
  ['month', 30 * 86_400_000],
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];
const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** Time's ISO form with its relative hint on a line of its own, for narrow table columns. */
export function StackedTime(props: { at: Date | null; now: Date; never?: string; /** Leave out " UTC" when the column's header says it. */ bare?: boolean }) {
  if (!props.at) return <span class="muted">{props.never ?? 'never'}</span>;
  const iso = props.at.toISOString();
  const diff = props.at.getTime() - props.now.getTime();
  const [unit, size] = UNITS.find(([, ms]) => Math.abs(diff) >= ms) ?? ['minute', 60_000];
  return (
    <>
      <time dateTime={iso}>{`${iso.slice(0, 16).replace('T', ' ')}${props.bare ? '' : ' UTC'}`}</time>
      <span class="muted small block">{Math.abs(diff) < 60_000 ? 'just now' : relative.format(Math.round(diff / size), unit)}</span>
    </>
  );
}
