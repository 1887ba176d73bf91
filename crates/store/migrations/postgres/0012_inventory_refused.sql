-- Why the device's agent could not get its last inventory report accepted (too large, say),
-- as the agent says at check-in; empty once a report is applied.
ALTER TABLE agent_credentials ADD COLUMN inventory_refused TEXT;
