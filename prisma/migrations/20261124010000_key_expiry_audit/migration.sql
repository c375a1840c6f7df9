-- AlterTable
ALTER TABLE "api_key" ADD COLUMN     "expiry_recorded_at" TIMESTAMPTZ(3);

-- CreateIndex
CREATE INDEX "api_key_expires_at_idx" ON "api_key"("expires_at");
