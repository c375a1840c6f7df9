-- The catalog: APIs (resource servers) with their scopes, and retired scopes.

-- CreateTable
CREATE TABLE "api" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "audience" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "api_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_name_key" ON "api"("name");

-- CreateIndex
CREATE UNIQUE INDEX "api_audience_key" ON "api"("audience");

-- AlterTable
ALTER TABLE "scope" ADD COLUMN "api_id" UUID,
ADD COLUMN "retired_at" TIMESTAMPTZ(3);

-- CreateIndex
CREATE INDEX "scope_api_id_idx" ON "scope"("api_id");

-- AddForeignKey
ALTER TABLE "scope" ADD CONSTRAINT "scope_api_id_fkey" FOREIGN KEY ("api_id") REFERENCES "api"("id") ON DELETE SET NULL ON UPDATE CASCADE;
