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
