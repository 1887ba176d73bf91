-- The console at scale: what its lists and the overview read, and a job lookup every
-- finished deployment makes.

-- A deployment leaving the active statuses closes its jobs by deployment id.
CREATE INDEX agent_jobs_deployment ON agent_jobs (deployment_id);
-- Deployments changed within a time ("last 24 hours", failures of the night).
CREATE INDEX deployments_changed ON deployments (partner_id, updated_at);
-- Open findings by organization (the overview's figures, the vulnerability list).
CREATE INDEX findings_open ON findings (partner_id, resolved_at, organization_id, device_id);
