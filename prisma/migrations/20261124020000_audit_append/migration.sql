-- Appends audit events to the hash chain in one statement: lock the chain, read its head,
-- and insert each event with hash = sha256(prev_hash || '\n' || body). `bodies` is a JSON
-- array of the events' canonical JSON texts, computed by the application
-- (src/audit/audit-log.ts, which also verifies the chain).
CREATE FUNCTION "audit_append"(bodies jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  prev text;
  body text;
  event jsonb;
  next_hash text;
BEGIN
  PERFORM pg_advisory_xact_lock(72707370);
  SELECT hash INTO prev FROM audit_event ORDER BY seq DESC LIMIT 1;
  prev := coalesce(prev, repeat('0', 64));
  FOR body IN SELECT value FROM jsonb_array_elements_text(bodies) LOOP
    event := body::jsonb;
    next_hash := encode(sha256(convert_to(prev || E'\n' || body, 'UTF8')), 'hex');
    INSERT INTO audit_event (at, type, actor_type, actor_id, subject_type, subject_id, request_id, ip, data, prev_hash, hash)
    VALUES ((event->>'at')::timestamptz, event->>'type', event->>'actorType', event->>'actorId', event->>'subjectType',
            event->>'subjectId', event->>'requestId', event->>'ip', event->'data', prev, next_hash);
    prev := next_hash;
  END LOOP;
END;
$$;
