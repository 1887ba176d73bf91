-- Tenancy tree, users, sessions, API tokens, login throttling and the evidence log.
-- Instants are BIGINT microseconds since the Unix epoch (UTC); identifiers are UUIDv7 text.

CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    notes       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (partner_id, name)
);

CREATE TABLE sites (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    time_zone        TEXT NOT NULL,
    address          TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX sites_partner ON sites (partner_id, organization_id);

CREATE TABLE device_groups (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX device_groups_partner ON device_groups (partner_id, organization_id);

CREATE TABLE devices (
    id                    TEXT PRIMARY KEY,
    partner_id            TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    site_id               TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    hostname              TEXT NOT NULL,
    role                  TEXT NOT NULL,
    os                    TEXT NOT NULL DEFAULT '',
    internet_facing       BOOLEAN NOT NULL DEFAULT FALSE,
    holds_sensitive_data  BOOLEAN NOT NULL DEFAULT FALSE,
    criticality           TEXT NOT NULL,
    time_zone             TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (organization_id, hostname)
);
CREATE INDEX devices_partner ON devices (partner_id, organization_id, hostname);
CREATE INDEX devices_partner_hostname ON devices (partner_id, hostname);
CREATE INDEX devices_site ON devices (site_id, hostname);

CREATE TABLE device_group_members (
    group_id   TEXT NOT NULL REFERENCES device_groups(id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX device_group_members_device ON device_group_members (device_id);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id  TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    username         TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    role             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX users_partner ON users (partner_id, organization_id);

-- Only the SHA-256 of a session cookie or API token is stored.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id  TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL,
    token_hash       TEXT NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    revoked_at       BIGINT,
    last_used_at     BIGINT
);
CREATE INDEX api_tokens_partner ON api_tokens (partner_id);

CREATE TABLE login_failures (
    throttle_key  TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (throttle_key, at);

-- One hash chain per partner. The head is updated in the same transaction as each append,
-- which also serializes appends to a chain.
CREATE TABLE chain_heads (
    chain      TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    head_hash  TEXT NOT NULL
);

CREATE TABLE evidence_events (
    chain            TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    actor            TEXT NOT NULL,
    action           TEXT NOT NULL,
    object_kind      TEXT NOT NULL,
    object_id        TEXT NOT NULL,
    organization_id  TEXT,
    payload          TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX evidence_events_object ON evidence_events (chain, object_kind, object_id);
