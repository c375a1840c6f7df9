-- The developer portal: personal teams own credentials, sessions, MFA, single-use links,
-- credential requests and daily usage rollups.

-- AlterTable
ALTER TABLE "account" ADD COLUMN "password_changed_at" TIMESTAMPTZ(3),
ADD COLUMN "mfa_secret_encrypted" TEXT,
ADD COLUMN "mfa_enabled_at" TIMESTAMPTZ(3),
ADD COLUMN "mfa_last_step" BIGINT;

-- AlterTable
ALTER TABLE "team" ADD COLUMN "personal_account_id" UUID,
ADD COLUMN "status" TEXT NOT NULL DEFAULT 'active';

-- Every existing account gets its personal team, which takes over the credentials it owned.
INSERT INTO "team" ("id", "name", "personal_account_id")
SELECT gen_random_uuid(), "email", "id" FROM "account";
INSERT INTO "membership" ("team_id", "account_id", "role")
SELECT "id", "personal_account_id", 'owner' FROM "team" WHERE "personal_account_id" IS NOT NULL
ON CONFLICT DO NOTHING;

ALTER TABLE "api_key" ADD COLUMN "team_id" UUID;
UPDATE "api_key" k SET "team_id" = t."id" FROM "team" t WHERE t."personal_account_id" = k."owner_id";
ALTER TABLE "api_key" DROP CONSTRAINT "api_key_owner_id_fkey";
DROP INDEX "api_key_owner_id_idx";
ALTER TABLE "api_key" DROP COLUMN "owner_id";

ALTER TABLE "oauth_client" ADD COLUMN "team_id" UUID,
ADD COLUMN "last_used_at" TIMESTAMPTZ(3);
UPDATE "oauth_client" c SET "team_id" = t."id" FROM "team" t WHERE t."personal_account_id" = c."owner_id";
ALTER TABLE "oauth_client" DROP CONSTRAINT "oauth_client_owner_id_fkey";
DROP INDEX "oauth_client_owner_id_idx";
ALTER TABLE "oauth_client" DROP COLUMN "owner_id";

-- CreateTable
CREATE TABLE "session" (
    "id" TEXT NOT NULL,
    "account_id" UUID NOT NULL,
    "team_id" UUID,
    "stage" TEXT NOT NULL,
    "ip" TEXT,
    "user_agent" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3),
    "mfa_at" TIMESTAMPTZ(3),

    CONSTRAINT "session_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "recovery_code" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "digest" BYTEA NOT NULL,
    "used_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "recovery_code_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "link_token" (
    "id" TEXT NOT NULL,
    "digest" BYTEA NOT NULL,
    "purpose" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "account_id" UUID,
    "team_id" UUID,
    "role" TEXT,
    "created_by_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),

    CONSTRAINT "link_token_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "credential_request" (
    "id" TEXT NOT NULL,
    "team_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "scopes" TEXT[],
    "audiences" TEXT[],
    "expires_in_seconds" INTEGER,
    "requested_by_id" UUID NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "decided_by_id" TEXT,
    "decided_at" TIMESTAMPTZ(3),
    "note" TEXT,
    "result_id" TEXT,
    "result_secret_encrypted" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "credential_request_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "usage_daily" (
    "credential_type" TEXT NOT NULL,
    "credential_id" TEXT NOT NULL,
    "day" DATE NOT NULL,
    "succeeded" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "usage_daily_pkey" PRIMARY KEY ("credential_type","credential_id","day")
);

-- CreateIndex
CREATE UNIQUE INDEX "team_personal_account_id_key" ON "team"("personal_account_id");

-- CreateIndex
CREATE INDEX "session_account_id_idx" ON "session"("account_id");

-- CreateIndex
CREATE UNIQUE INDEX "recovery_code_digest_key" ON "recovery_code"("digest");

-- CreateIndex
CREATE INDEX "recovery_code_account_id_idx" ON "recovery_code"("account_id");

-- CreateIndex
CREATE INDEX "link_token_account_id_idx" ON "link_token"("account_id");

-- CreateIndex
CREATE INDEX "link_token_team_id_idx" ON "link_token"("team_id");

-- CreateIndex
CREATE INDEX "credential_request_team_id_status_idx" ON "credential_request"("team_id", "status");

-- CreateIndex
CREATE INDEX "credential_request_status_created_at_idx" ON "credential_request"("status", "created_at");

-- CreateIndex
CREATE INDEX "oauth_client_team_id_idx" ON "oauth_client"("team_id");

-- CreateIndex
CREATE INDEX "api_key_team_id_idx" ON "api_key"("team_id");

-- AddForeignKey
ALTER TABLE "team" ADD CONSTRAINT "team_personal_account_id_fkey" FOREIGN KEY ("personal_account_id") REFERENCES "account"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "session" ADD CONSTRAINT "session_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recovery_code" ADD CONSTRAINT "recovery_code_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "credential_request" ADD CONSTRAINT "credential_request_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "team"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "oauth_client" ADD CONSTRAINT "oauth_client_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "team"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_key" ADD CONSTRAINT "api_key_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "team"("id") ON DELETE SET NULL ON UPDATE CASCADE;
