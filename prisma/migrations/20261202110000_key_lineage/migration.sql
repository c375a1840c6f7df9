-- A key and its rotated successors share one allowance: plan counters are keyed by the first
-- key's id, carried to every successor (null: the key is the first of its line).
ALTER TABLE "api_key" ADD COLUMN "lineage_id" TEXT;
