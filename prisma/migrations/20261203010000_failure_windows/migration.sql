-- Failed checks per credential and burst window, added up by every node (issue 9 §1.6): a burst
-- spread over several nodes behind a balancer is seen as one (credentials/usage.ts).

-- CreateTable
CREATE TABLE "failure_window" (
    "credential_type" TEXT NOT NULL,
    "credential_id" TEXT NOT NULL,
    "slot" TIMESTAMPTZ(3) NOT NULL,
    "failed" INTEGER NOT NULL,

    CONSTRAINT "failure_window_pkey" PRIMARY KEY ("credential_type","credential_id","slot")
);

-- CreateIndex
CREATE INDEX "failure_window_slot_idx" ON "failure_window"("slot");
