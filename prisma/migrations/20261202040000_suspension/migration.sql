-- Suspension and "revoke all tokens of an application" (issue 8). Suspension itself needs no
-- column: team.status and account.status exist, and credential lookups read them.

-- AlterTable
ALTER TABLE "oauth_client" ADD COLUMN "tokens_revoked_before" TIMESTAMPTZ(3);
