DROP FUNCTION radfin_ensure_ledger_partition(text);
-- Drops the partitions with it.
DROP TABLE ledger_entries;
