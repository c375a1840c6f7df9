-- Hourly usage, anomaly alerts, networks seen per credential, reminders (issue 9 §1.5–1.7).

-- AlterTable
ALTER TABLE "team" ADD COLUMN "auto_suspend_on_alert" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "oauth_client" ADD COLUMN "previous_secret_used_at" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "api_key" ADD COLUMN "suspended_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "usage_hourly" (
    "credential_type" TEXT NOT NULL,
    "credential_id" TEXT NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "succeeded" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "usage_hourly_pkey" PRIMARY KEY ("credential_type","credential_id","hour")
);

-- CreateTable
CREATE TABLE "credential_network" (
    "credential_type" TEXT NOT NULL,
    "credential_id" TEXT NOT NULL,
    "network" TEXT NOT NULL,
    "first_seen" TIMESTAMPTZ(3) NOT NULL,
    "last_seen" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "credential_network_pkey" PRIMARY KEY ("credential_type","credential_id","network")
);

-- CreateTable
CREATE TABLE "credential_alert" (
    "kind" TEXT NOT NULL,
    "credential_type" TEXT NOT NULL,
    "credential_id" TEXT NOT NULL,
    "window" TEXT NOT NULL,
    "raised_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "credential_alert_pkey" PRIMARY KEY ("kind","credential_type","credential_id","window")
);

-- CreateTable
CREATE TABLE "sent_reminder" (
    "credential_type" TEXT NOT NULL,
    "credential_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "threshold" INTEGER NOT NULL,
    "due_at" TIMESTAMPTZ(3) NOT NULL,
    "sent_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "sent_reminder_pkey" PRIMARY KEY ("credential_type","credential_id","kind","threshold","due_at")
);

-- CreateIndex
CREATE INDEX "usage_hourly_hour_idx" ON "usage_hourly"("hour");

-- CreateIndex
CREATE INDEX "credential_network_last_seen_idx" ON "credential_network"("last_seen");

-- CreateIndex
CREATE INDEX "credential_alert_raised_at_idx" ON "credential_alert"("raised_at");
