-- A report number far ahead of anything an agent counts to (2^40) was sent by a faulty or
-- hostile agent and froze the device's inventory: the next full report starts over.
UPDATE agent_credentials SET inventory_seq = 0 WHERE inventory_seq > 1099511627776;
