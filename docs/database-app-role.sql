-- Latchkey: the least-privilege role the server connects as (docs/database-roles.md).
--
-- Run as the schema owner (the role that runs `latchkey migrate`), in Latchkey's database,
-- after the first migration: psql "$DATABASE_MIGRATION_URL" -f docs/database-app-role.sql
-- It is idempotent: run it again after upgrades. To use another name than latchkey_app,
-- replace it throughout. Then create the login role the server uses, as a member:
--   CREATE ROLE latchkey_web LOGIN PASSWORD '…' IN ROLE latchkey_app;
--
-- What the role may do: read and write Latchkey's tables, except the audit log, which it may
-- read and add to only through audit_append() (a SECURITY DEFINER function owned by the
-- owner), so it can neither change an event nor write one of its own making. It owns
-- nothing, so it cannot ALTER a table, disable a trigger or TRUNCATE.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'latchkey_app') THEN
    CREATE ROLE latchkey_app NOLOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO latchkey_app', current_database());
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO latchkey_app', current_schema());
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO latchkey_app', current_schema());
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO latchkey_app', current_schema());
  -- Tables and sequences later migrations create (by this same owner) get the same grants.
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO latchkey_app', current_schema());
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO latchkey_app', current_schema());
END;
$$;

-- The audit log: read, and append through audit_append() only.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON "audit_event" FROM latchkey_app;
REVOKE ALL ON SEQUENCE "audit_event_seq_seq" FROM latchkey_app;
GRANT SELECT ON "audit_event" TO latchkey_app;
GRANT EXECUTE ON FUNCTION "audit_append"(jsonb) TO latchkey_app;
-- Checkpoints and their daily mail: written once, never changed.
REVOKE UPDATE, DELETE, TRUNCATE ON "audit_checkpoint", "audit_checkpoint_mailing" FROM latchkey_app;
-- Migrations are the owner's: the server only reads what is applied.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "_prisma_migrations" FROM latchkey_app;
GRANT SELECT ON "_prisma_migrations" TO latchkey_app;
