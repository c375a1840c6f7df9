-- Signed checkpoints of the audit chain's head (issue 8 §1.3): a compact JWS over the head's
-- seq and hash. One row per checkpointed seq, so two nodes can never both write one.
CREATE TABLE "audit_checkpoint" (
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "kid" TEXT NOT NULL,
    "jws" TEXT NOT NULL,

    CONSTRAINT "audit_checkpoint_pkey" PRIMARY KEY ("seq")
);

-- The day's checkpoint mail: the node that inserts a day's row sends it, so it goes once a day.
CREATE TABLE "audit_checkpoint_mailing" (
    "day" DATE NOT NULL,
    "seq" BIGINT NOT NULL,
    "sent_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "audit_checkpoint_mailing_pkey" PRIMARY KEY ("day")
);

-- One message for every append-only table.
CREATE OR REPLACE FUNCTION "audit_event_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER "audit_checkpoint_no_change" BEFORE UPDATE OR DELETE ON "audit_checkpoint"
  FOR EACH ROW EXECUTE FUNCTION "audit_event_append_only"();
CREATE TRIGGER "audit_checkpoint_no_truncate" BEFORE TRUNCATE ON "audit_checkpoint"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_event_append_only"();

-- The audit viewer's filters, each ending in seq so that "newest first, older than the
-- cursor" is one index range (src/audit/audit-query.ts; bench/audit.ts at 10 million events).
DROP INDEX "audit_event_subject_type_subject_id_idx";
CREATE INDEX "audit_event_subject_type_subject_id_seq_idx" ON "audit_event"("subject_type", "subject_id", "seq");
CREATE INDEX "audit_event_actor_id_seq_idx" ON "audit_event"("actor_id", "seq");
CREATE INDEX "audit_event_type_seq_idx" ON "audit_event"("type", "seq");
CREATE INDEX "audit_event_at_idx" ON "audit_event"("at");

-- Least privilege (docs/database-roles.md): the app role gets no INSERT on audit_event, only
-- EXECUTE on audit_append, which runs as the owner. So the app can add events to the chain but
-- never write a row of its own making (a forged hash). The path is pinned to this schema, with
-- pg_temp last, so a caller's temporary objects cannot stand in for the real ones.
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION "audit_append"(jsonb) SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
END;
$$;
REVOKE EXECUTE ON FUNCTION "audit_append"(jsonb) FROM PUBLIC;
