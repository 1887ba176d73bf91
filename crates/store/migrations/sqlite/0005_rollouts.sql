-- Rollout halts: the MSP-wide circuit breaker. A halted update (product → version) is held
-- for every client of the partner until a technician releases it.

CREATE TABLE rollout_halts (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    product         TEXT NOT NULL,
    version         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    halted_by       TEXT NOT NULL,
    halted_at       BIGINT NOT NULL,
    released_at     BIGINT,
    released_by     TEXT,
    release_reason  TEXT
);

CREATE INDEX rollout_halts_by_update ON rollout_halts (partner_id, product, version);
