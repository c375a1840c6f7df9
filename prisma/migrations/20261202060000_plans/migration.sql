-- Plans (issue 9 §1.1): named limits for API keys and applications, each of which may
-- reference one and override its rate and quota.

-- CreateTable
CREATE TABLE "plan" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "rate_limit" INTEGER NOT NULL,
    "rate_window_seconds" INTEGER NOT NULL,
    "quota_limit" INTEGER,
    "quota_period" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "plan_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "plan_name_key" ON "plan"("name");

-- AlterTable
ALTER TABLE "api_key" ADD COLUMN "plan_id" UUID,
ADD COLUMN "rate_limit" INTEGER,
ADD COLUMN "rate_window_seconds" INTEGER,
ADD COLUMN "quota_limit" INTEGER,
ADD COLUMN "quota_period" TEXT;

-- AlterTable
ALTER TABLE "oauth_client" ADD COLUMN "plan_id" UUID,
ADD COLUMN "rate_limit" INTEGER,
ADD COLUMN "rate_window_seconds" INTEGER,
ADD COLUMN "quota_limit" INTEGER,
ADD COLUMN "quota_period" TEXT;

-- CreateIndex
CREATE INDEX "api_key_plan_id_idx" ON "api_key"("plan_id");

-- CreateIndex
CREATE INDEX "oauth_client_plan_id_idx" ON "oauth_client"("plan_id");

-- AddForeignKey
ALTER TABLE "api_key" ADD CONSTRAINT "api_key_plan_id_fkey" FOREIGN KEY ("plan_id") REFERENCES "plan"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "oauth_client" ADD CONSTRAINT "oauth_client_plan_id_fkey" FOREIGN KEY ("plan_id") REFERENCES "plan"("id") ON DELETE SET NULL ON UPDATE CASCADE;
