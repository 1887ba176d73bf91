-- Deployments, the agent jobs that carry them, and package holds.
--
-- A deployment is one device × the updates it installs together in one window (or, with
-- kind 'rollback', the versions it goes back to). Its status moves scheduled → dispatched →
-- running (→ rebooting) → installed → verified, or ends failed, rolled_back or missed; every
-- move is an evidence event. At most one deployment per device is at work (scheduled to
-- rebooting) at a time; an installed one only waits for the inventory, and a rollback may
-- follow it at once.

CREATE TABLE deployments (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    device_id       TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    -- install or rollback
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    ring            BIGINT NOT NULL,
    -- JSON: [{product, version, manager, name, from_version, to_version}]
    updates         TEXT NOT NULL,
    window_start    BIGINT NOT NULL,
    window_end      BIGINT NOT NULL,
    reboot_required BOOLEAN NOT NULL,
    -- The deployment this one reschedules (after a missed window) or rolls back.
    previous_id     TEXT,
    detail          TEXT NOT NULL,
    -- The agent's log of the last job (the end of it).
    log             TEXT NOT NULL,
    boot_id         TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    started_at      BIGINT,
    installed_at    BIGINT,
    finished_at     BIGINT
);
CREATE INDEX deployments_partner ON deployments (partner_id, organization_id, created_at);
CREATE INDEX deployments_device ON deployments (device_id, status);
CREATE UNIQUE INDEX deployments_one_at_work ON deployments (device_id)
    WHERE status IN ('scheduled', 'dispatched', 'running', 'rebooting');

-- Signed jobs waiting for, leased to, or finished by an agent. A lease that expires without
-- a report makes the job due again, with the same idempotency key: the agent runs a key once.
CREATE TABLE agent_jobs (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    device_id       TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    deployment_id   TEXT REFERENCES deployments(id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    signature       TEXT NOT NULL,
    -- queued, leased, done
    state           TEXT NOT NULL,
    window_start    BIGINT NOT NULL,
    window_end      BIGINT NOT NULL,
    leased_until    BIGINT,
    deliveries      BIGINT NOT NULL,
    outcome         TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX agent_jobs_due ON agent_jobs (device_id, state);

-- A version a device must keep: set when a deployment is rolled back, so the next cycle does
-- not install the bad version again, until a technician clears it.
CREATE TABLE package_holds (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    device_id       TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    manager         TEXT NOT NULL,
    name            TEXT NOT NULL,
    product         TEXT NOT NULL,
    held_version    TEXT NOT NULL,
    blocked_version TEXT NOT NULL,
    deployment_id   TEXT,
    reason          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    cleared_at      BIGINT,
    cleared_by      TEXT
);
CREATE INDEX package_holds_device ON package_holds (partner_id, device_id);

-- The deployment whose verification resolved a finding as 'updated'.
ALTER TABLE findings ADD COLUMN resolved_by_deployment TEXT;
