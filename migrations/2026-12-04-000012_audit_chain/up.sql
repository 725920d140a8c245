-- The audit log made tamper-evident: a hash chain over its rows (spec §6).
--
-- Each row gets a chain position `seq` (1, 2, 3, … with no gaps, in commit order), `prev_hash`
-- (the hash of row seq − 1; 32 zero bytes for seq 1) and
--     hash = sha256(prev_hash || radfin_audit_canonical(row))
-- computed by a BEFORE INSERT trigger, whatever the inserting role passes. Altering, inserting or
-- removing a row afterwards (which only the table owner can, with the triggers disabled) breaks
-- the chain; `radfin audit verify` (the ledger's VerifyAuditLog) recomputes it in Rust, from the
-- rows alone, and names the first broken row. The canonical bytes (all integers big-endian):
--     int8 seq, int8 id, int8 at (microseconds since 2000-01-01 UTC, as timestamptz_send),
--     then actor, role, action, target, reason, outcome, details::text, each as int4 byte length
--     + UTF-8 bytes (reason NULL: int4 -1 and no bytes).
-- Keep radfin_domain::audit_chain::canonical_bytes in step with this.
--
-- The chain's head (the last seq and hash) is one row of audit_chain_head, locked by every insert
-- until its transaction ends: inserts are chained one transaction at a time, in commit order.
-- (An advisory lock and a read of the newest audit row would not do: a REPEATABLE READ or
-- SERIALIZABLE transaction reads from its snapshot and would miss a row committed after it
-- started, forking the chain. Locking the head row instead makes such a transaction fail with a
-- serialization failure, which the services retry.) Verification also compares the newest row
-- with the head, so removing the newest rows is noticed too.

LOCK TABLE audit_log IN EXCLUSIVE MODE;

CREATE TABLE audit_chain_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint  NOT NULL CHECK (seq >= 0),
    hash      bytea   NOT NULL CHECK (octet_length(hash) = 32)
);
INSERT INTO audit_chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

ALTER TABLE audit_log
    ADD COLUMN seq       bigint NULL,
    ADD COLUMN prev_hash bytea  NULL,
    ADD COLUMN hash      bytea  NULL;

-- The canonical bytes of an audit row (see above).
CREATE FUNCTION radfin_audit_canonical(
    seq bigint, id bigint, at timestamptz, actor text, role text, action text, target text,
    reason text, outcome text, details jsonb
) RETURNS bytea
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT int8send(seq) || int8send(id) || timestamptz_send(at)
        || int4send(octet_length(convert_to(actor, 'UTF8'))) || convert_to(actor, 'UTF8')
        || int4send(octet_length(convert_to(role, 'UTF8'))) || convert_to(role, 'UTF8')
        || int4send(octet_length(convert_to(action, 'UTF8'))) || convert_to(action, 'UTF8')
        || int4send(octet_length(convert_to(target, 'UTF8'))) || convert_to(target, 'UTF8')
        || CASE WHEN reason IS NULL THEN int4send(-1)
                ELSE int4send(octet_length(convert_to(reason, 'UTF8'))) || convert_to(reason, 'UTF8') END
        || int4send(octet_length(convert_to(outcome, 'UTF8'))) || convert_to(outcome, 'UTF8')
        || int4send(octet_length(convert_to(details::text, 'UTF8'))) || convert_to(details::text, 'UTF8')
$$;

-- Existing rows, chained in id order.
ALTER TABLE audit_log DISABLE TRIGGER radfin_append_only_row;
DO $$
DECLARE
    r record;
    n bigint := 0;
    prev bytea := decode(repeat('00', 32), 'hex');
    next bytea;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        next := sha256(prev || radfin_audit_canonical(
            n, r.id, r.at, r.actor, r.role, r.action, r.target, r.reason, r.outcome, r.details));
        UPDATE audit_log SET seq = n, prev_hash = prev, hash = next WHERE id = r.id;
        prev := next;
    END LOOP;
    UPDATE audit_chain_head SET seq = n, hash = prev;
END
$$;
ALTER TABLE audit_log ENABLE TRIGGER radfin_append_only_row;

ALTER TABLE audit_log
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT audit_log_seq_key UNIQUE (seq),
    ADD CONSTRAINT audit_log_hash_check CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32);

-- Chains a new row: the next position after the head, linked to the head's hash.
-- SECURITY DEFINER: the services may insert audit rows but not touch the head.
CREATE FUNCTION radfin_audit_chain() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
BEGIN
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM public.audit_chain_head h FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_chain_head is empty: the audit chain has no head'
            USING HINT = 'the audit log was tampered with; run `radfin audit verify`';
    END IF;
    NEW.seq := head_seq + 1;
    NEW.prev_hash := head_hash;
    NEW.hash := sha256(head_hash || public.radfin_audit_canonical(
        NEW.seq, NEW.id, NEW.at, NEW.actor, NEW.role, NEW.action, NEW.target, NEW.reason, NEW.outcome,
        NEW.details));
    UPDATE public.audit_chain_head SET seq = NEW.seq, hash = NEW.hash;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION radfin_audit_chain() FROM PUBLIC;
REVOKE ALL ON FUNCTION radfin_audit_canonical(bigint, bigint, timestamptz, text, text, text, text, text, text, jsonb)
    FROM PUBLIC;

CREATE TRIGGER radfin_audit_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION radfin_audit_chain();

-- The ledger verifies the chain (VerifyAuditLog); it already reads audit_log.
GRANT SELECT ON audit_chain_head TO radfin_ledger;
