-- Vulnerability intelligence (shared by every partner: public data), device inventories
-- and findings (tenant data, scoped by partner and organization like every other table).

CREATE TABLE cves (
    id             TEXT PRIMARY KEY,
    status         TEXT NOT NULL,
    published      TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    description    TEXT NOT NULL,
    cvss_score     DOUBLE PRECISION,
    cvss_version   TEXT,
    cvss_vector    TEXT,
    severity       TEXT,
    cwes           TEXT NOT NULL,
    configurations TEXT NOT NULL,
    imported_at    BIGINT NOT NULL
);
CREATE INDEX cves_last_modified ON cves (last_modified);

-- Which vendor:product pairs an NVD record names as vulnerable: the index a new CVE is
-- turned into affected devices with.
CREATE TABLE cve_products (
    cve_id    TEXT NOT NULL REFERENCES cves(id) ON DELETE CASCADE,
    match_key TEXT NOT NULL,
    PRIMARY KEY (cve_id, match_key)
);
CREATE INDEX cve_products_key ON cve_products (match_key);

CREATE TABLE kev (
    cve_id          TEXT PRIMARY KEY,
    vendor          TEXT NOT NULL,
    product         TEXT NOT NULL,
    name            TEXT NOT NULL,
    date_added      TEXT NOT NULL,
    due_date        TEXT NOT NULL,
    ransomware      BOOLEAN NOT NULL,
    required_action TEXT NOT NULL,
    notes           TEXT NOT NULL
);

CREATE TABLE epss (
    cve_id        TEXT PRIMARY KEY,
    score         DOUBLE PRECISION NOT NULL,
    percentile    DOUBLE PRECISION NOT NULL,
    model_version TEXT NOT NULL,
    score_date    TEXT NOT NULL
);

CREATE TABLE distro_advisories (
    distro        TEXT NOT NULL,
    release       TEXT NOT NULL,
    package       TEXT NOT NULL,
    cve_id        TEXT NOT NULL,
    source        TEXT NOT NULL,
    state         TEXT NOT NULL,
    fixed_version TEXT,
    urgency       TEXT,
    detail        TEXT,
    PRIMARY KEY (distro, release, package, cve_id, source)
);
CREATE INDEX distro_advisories_cve ON distro_advisories (cve_id);

CREATE TABLE feed_runs (
    id          TEXT PRIMARY KEY,
    feed        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    changed     BIGINT NOT NULL,
    unchanged   BIGINT NOT NULL,
    skipped     BIGINT NOT NULL,
    detail      TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX feed_runs_feed ON feed_runs (feed, started_at);

CREATE TABLE feed_state (
    feed       TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Distinct software titles; a device holds titles. The id is a hash of the title's fields,
-- so every device with the same program version shares one row.
CREATE TABLE software_titles (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    manager        TEXT,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    vendor         TEXT,
    arch           TEXT,
    source_name    TEXT,
    source_version TEXT,
    cpe            TEXT,
    match_key      TEXT
);
CREATE INDEX software_titles_name ON software_titles (name);
CREATE INDEX software_titles_match ON software_titles (match_key);

CREATE TABLE device_software (
    device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    title_id   TEXT NOT NULL REFERENCES software_titles(id),
    partner_id TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (device_id, title_id)
);
CREATE INDEX device_software_title ON device_software (title_id, partner_id);

CREATE TABLE device_os (
    device_id  TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    partner_id TEXT NOT NULL,
    family     TEXT NOT NULL,
    os_id      TEXT NOT NULL,
    version    TEXT NOT NULL,
    codename   TEXT,
    name       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE software_events (
    id           TEXT PRIMARY KEY,
    partner_id   TEXT NOT NULL,
    device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    at           BIGINT NOT NULL,
    change       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    from_version TEXT,
    to_version   TEXT
);
CREATE INDEX software_events_device ON software_events (device_id, at);

CREATE TABLE findings (
    id                TEXT PRIMARY KEY,
    partner_id        TEXT NOT NULL,
    organization_id   TEXT NOT NULL,
    device_id         TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    cve_id            TEXT NOT NULL,
    product           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    items             TEXT NOT NULL,
    installed_version TEXT NOT NULL,
    fixed_version     TEXT,
    source            TEXT NOT NULL,
    rule              TEXT NOT NULL,
    first_detected    BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL,
    resolved_at       BIGINT,
    resolution        TEXT,
    UNIQUE (device_id, cve_id, product)
);
CREATE INDEX findings_partner_cve ON findings (partner_id, cve_id);
CREATE INDEX findings_device ON findings (device_id, resolved_at);

-- Notifications for technicians (a new CVE or KEV entry touching the fleet).
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL,
    at              BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    cve_id          TEXT NOT NULL,
    devices         BIGINT NOT NULL,
    message         TEXT NOT NULL,
    read_at         BIGINT
);
CREATE INDEX alerts_partner ON alerts (partner_id, at);
