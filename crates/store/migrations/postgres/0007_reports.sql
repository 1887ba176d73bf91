-- Signed checkpoints of the evidence chains, client reports and their schedules, and the
-- organization of an alert (remediation-deadline alerts belong to one client).

-- The server signs each chain's head periodically and at every evidence export; a bundle
-- carries the checkpoints that cover its segment.
CREATE TABLE evidence_checkpoints (
    chain      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    key_id     TEXT NOT NULL,
    -- hex of the ed25519 signature over the checkpoint message
    signature  TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);

-- An audit window is found by time.
CREATE INDEX evidence_events_at ON evidence_events (chain, at);

CREATE TABLE report_schedules (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- monthly (the first of each month, for the month before) or weekly (Mondays, the week before)
    cadence         TEXT NOT NULL,
    -- JSON array of e-mail addresses
    recipients      TEXT NOT NULL,
    next_run        BIGINT NOT NULL,
    last_run        BIGINT,
    last_status     TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX report_schedules_due ON report_schedules (next_run);

CREATE TABLE reports (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    period_start    BIGINT NOT NULL,
    period_end      BIGINT NOT NULL,
    generated_at    BIGINT NOT NULL,
    generated_by    TEXT NOT NULL,
    schedule_id     TEXT,
    -- JSON of the figures the report shows
    summary         TEXT NOT NULL,
    html            TEXT NOT NULL,
    csv             TEXT NOT NULL,
    pdf             BYTEA,
    -- '' until delivered; 'sent to …' or 'failed: …'
    delivery        TEXT NOT NULL
);
CREATE INDEX reports_organization ON reports (partner_id, organization_id, generated_at);

ALTER TABLE alerts ADD COLUMN organization_id TEXT;
