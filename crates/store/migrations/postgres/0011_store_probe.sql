-- One row the server rewrites to check that the database takes writes (readiness checks:
-- a full disk or a read-only file system fails this write).
CREATE TABLE store_probe (id INTEGER PRIMARY KEY, probes BIGINT NOT NULL);
INSERT INTO store_probe (id, probes) VALUES (1, 0);
