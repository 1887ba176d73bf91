-- Agents: site enrollment tokens, the credential of each enrolled device, and the server's
-- signing key that agents pin at enrollment.

CREATE TABLE enrollment_tokens (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    site_id         TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    max_uses        BIGINT,
    uses            BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX enrollment_tokens_partner ON enrollment_tokens (partner_id, organization_id);

CREATE TABLE agent_credentials (
    device_id   TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    partner_id  TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    machine_id  TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    clone_of    TEXT,
    last_seen   BIGINT,
    -- The sequence number of the last inventory report applied (full or delta).
    inventory_seq   BIGINT NOT NULL DEFAULT 0,
    agent_version   TEXT,
    reboot_required BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX agent_credentials_machine ON agent_credentials (partner_id, machine_id);

CREATE TABLE server_keys (
    name        TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
