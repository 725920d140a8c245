DROP TRIGGER radfin_audit_chain ON audit_log;
DROP FUNCTION radfin_audit_chain();
DROP FUNCTION radfin_audit_canonical(bigint, bigint, timestamptz, text, text, text, text, text, text, jsonb);
ALTER TABLE audit_log DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash;
DROP TABLE audit_chain_head;
