-- Signing-key rotation without downtime (issue 8 §1.4): states next → current → retired →
-- removed, with the times of each step. A removed key keeps its public JWK for history.

ALTER TABLE "signing_key" RENAME COLUMN "status" TO "state";
ALTER TABLE "signing_key" ALTER COLUMN "private_jwk_encrypted" DROP NOT NULL,
ADD COLUMN "activates_at" TIMESTAMPTZ(3),
ADD COLUMN "removes_at" TIMESTAMPTZ(3),
ADD COLUMN "removed_at" TIMESTAMPTZ(3);

UPDATE "signing_key" SET "activates_at" = "created_at";
ALTER TABLE "signing_key" ALTER COLUMN "activates_at" SET NOT NULL;

-- The newest active key becomes current; any other active one (there should be none) retires.
-- Retired keys had no removal time: one day covers any access-token lifetime in use so far.
UPDATE "signing_key" SET "state" = 'retired', "retired_at" = CURRENT_TIMESTAMP
 WHERE "state" = 'active'
   AND "kid" <> (SELECT "kid" FROM "signing_key" WHERE "state" = 'active' ORDER BY "created_at" DESC, "kid" LIMIT 1);
UPDATE "signing_key" SET "state" = 'current' WHERE "state" = 'active';
UPDATE "signing_key" SET "removes_at" = COALESCE("retired_at", CURRENT_TIMESTAMP) + INTERVAL '1 day'
 WHERE "state" = 'retired';
