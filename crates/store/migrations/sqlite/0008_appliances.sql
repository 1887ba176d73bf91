-- Agentless network appliances: SNMP credentials (sealed), the agents that collect for a
-- site, the appliances themselves (each also a device, so findings, updates, rings and
-- windows apply), partner-wide identification mappings, discovery sweeps, and the
-- maintenance tasks that carry an appliance's firmware update.

-- An SNMP credential: only its sealed form is stored (ChaCha20-Poly1305 under the server's
-- secret key, with the credential's id as associated data). It is never shown again.
CREATE TABLE snmp_credentials (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    -- NULL: usable for every organization of the partner
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    -- v2c or v3
    version         TEXT NOT NULL,
    sealed          TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (partner_id, name)
);

-- An enrolled agent chosen to collect for its site.
CREATE TABLE collectors (
    device_id       TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    site_id         TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT
);
CREATE INDEX collectors_site ON collectors (site_id);

CREATE TABLE appliances (
    device_id       TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    -- snmp (polled by a collector) or manual (reported by a technician)
    source          TEXT NOT NULL,
    address         TEXT,
    port            BIGINT,
    collector_id    TEXT REFERENCES collectors(device_id) ON DELETE SET NULL,
    credential_id   TEXT REFERENCES snmp_credentials(id) ON DELETE SET NULL,
    sys_descr       TEXT NOT NULL DEFAULT '',
    sys_object_id   TEXT NOT NULL DEFAULT '',
    sys_name        TEXT NOT NULL DEFAULT '',
    -- JSON array of ENTITY-MIB rows
    entities        TEXT NOT NULL DEFAULT '[]',
    identified      BOOLEAN NOT NULL DEFAULT FALSE,
    vendor          TEXT,
    product         TEXT,
    model           TEXT,
    firmware        TEXT,
    serial          TEXT,
    os_cpe          TEXT,
    hardware_cpe    TEXT,
    rule            TEXT,
    poll_minutes    BIGINT NOT NULL,
    next_poll_at    BIGINT,
    leased_until    BIGINT,
    last_polled_at  BIGINT,
    -- ok, timeout, unreachable, auth_failed, malformed, error
    last_outcome    TEXT,
    last_error      TEXT,
    last_ok_at      BIGINT,
    confirmed_at    BIGINT,
    confirmed_by    TEXT,
    notes           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX appliances_partner ON appliances (partner_id, organization_id);
CREATE INDEX appliances_due ON appliances (collector_id, next_poll_at);
CREATE INDEX appliances_firmware ON appliances (partner_id, product, firmware);

-- A technician's identification of a device the table does not know, for the whole partner.
CREATE TABLE appliance_mappings (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    -- JSON of the mapping
    body            TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- A discovery sweep of an address range, run by one collector.
CREATE TABLE network_scans (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    site_id         TEXT NOT NULL,
    collector_id    TEXT NOT NULL REFERENCES collectors(device_id) ON DELETE CASCADE,
    range_text      TEXT NOT NULL,
    port            BIGINT NOT NULL,
    rate_per_sec    BIGINT NOT NULL,
    -- JSON array of credential ids tried in turn
    credential_ids  TEXT NOT NULL,
    -- queued, leased, done
    status          TEXT NOT NULL,
    leased_until    BIGINT,
    probed          BIGINT,
    answered        BIGINT,
    added           BIGINT,
    detail          TEXT NOT NULL DEFAULT '',
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE INDEX network_scans_collector ON network_scans (collector_id, status);

-- The person side of an appliance deployment: who does it, and who said it was done.
CREATE TABLE appliance_tasks (
    deployment_id   TEXT PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
    partner_id      TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    device_id       TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    assignee        TEXT,
    done_at         BIGINT,
    done_by         TEXT,
    note            TEXT NOT NULL DEFAULT '',
    reopened        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX appliance_tasks_partner ON appliance_tasks (partner_id, organization_id);
