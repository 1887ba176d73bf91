-- Remediation: hierarchical policies, each device's available updates (the update catalog),
-- approval decisions, client exceptions, and risk decisions on findings with no patch yet.

CREATE TABLE policies (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    -- partner, organization, site, group or device
    level           TEXT NOT NULL,
    -- The id of the organization, site, group or device; '' for the partner.
    target_id       TEXT NOT NULL,
    -- The organization the target belongs to (NULL for the partner level), for scoping.
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    priority        BIGINT NOT NULL,
    settings        TEXT NOT NULL,
    locked          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (partner_id, name)
);
CREATE INDEX policies_target ON policies (partner_id, level, target_id);

CREATE TABLE device_updates (
    device_id       TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    partner_id      TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    manager         TEXT NOT NULL,
    name            TEXT NOT NULL,
    installed       TEXT NOT NULL,
    candidate       TEXT NOT NULL,
    origin          TEXT NOT NULL,
    classification  TEXT NOT NULL,
    advisories      TEXT NOT NULL,
    cves            TEXT NOT NULL,
    reboot_required BOOLEAN NOT NULL,
    rollback        TEXT NOT NULL,
    first_seen      BIGINT NOT NULL,
    reported_at     BIGINT NOT NULL,
    PRIMARY KEY (device_id, name)
);
CREATE INDEX device_updates_partner ON device_updates (partner_id, organization_id);

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    -- NULL: for every organization of the partner.
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    product         TEXT NOT NULL,
    version         TEXT NOT NULL,
    -- approved, rejected, deferred or awaiting_second
    decision        TEXT NOT NULL,
    defer_until     BIGINT,
    reason          TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    -- The policy rule that decided, for decisions by rule.
    rule            TEXT,
    score           DOUBLE PRECISION,
    emergency       BOOLEAN NOT NULL,
    second_approver TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX approvals_update ON approvals (partner_id, product, version);

CREATE TABLE exceptions (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- pin or exclude
    kind            TEXT NOT NULL,
    software        TEXT NOT NULL,
    version_range   TEXT NOT NULL,
    owner           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX exceptions_partner ON exceptions (partner_id, organization_id);

CREATE TABLE risk_decisions (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    cve_id          TEXT NOT NULL,
    product         TEXT NOT NULL,
    -- mitigated or risk_accepted
    kind            TEXT NOT NULL,
    control         TEXT NOT NULL,
    owner           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX risk_decisions_partner ON risk_decisions (partner_id, organization_id);
