-- Reference data's transaction time in commit order.
--
-- Pricing states which reference data a fact was priced with by the newest `recorded_at` (of
-- parties and rule versions) or `fetched_at` (of FX rates) it had read, and the ledger keeps, of
-- two facts for one report revision, the one with the later version. With `DEFAULT now()` (the
-- start of the transaction) two changes committed at once could commit out of order: a load
-- between the two commits would see the later-stamped change only, and facts priced after the
-- earlier-stamped one committed would carry the same version as facts priced without it and be
-- dropped as stale.
--
-- Every insert into those tables now takes its stamp from one clock row, moved strictly forward
-- (and never behind the wall clock), whose row lock is held until the transaction ends: changes
-- are stamped one transaction at a time, in commit order, so a version read from the clock covers
-- exactly the changes committed before it was read.

CREATE TABLE reference_clock (
    singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    at        timestamptz NOT NULL
);
INSERT INTO reference_clock (at)
SELECT greatest(
    (SELECT max(recorded_at) FROM providers), (SELECT max(recorded_at) FROM clients),
    (SELECT max(recorded_at) FROM provider_pricing_rules), (SELECT max(recorded_at) FROM client_pricing_rules),
    (SELECT max(fetched_at) FROM fx_rates), 'epoch'::timestamptz);

-- Stamps the new row's column named by the trigger's argument from the clock.
-- SECURITY DEFINER: the services may insert reference data but not move the clock otherwise.
CREATE FUNCTION radfin_reference_stamp() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    stamped timestamptz;
BEGIN
    UPDATE public.reference_clock SET at = greatest(clock_timestamp(), at + interval '1 microsecond')
    RETURNING at INTO stamped;
    NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], stamped));
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION radfin_reference_stamp() FROM PUBLIC;

CREATE TRIGGER radfin_reference_stamp BEFORE INSERT ON providers
    FOR EACH ROW EXECUTE FUNCTION radfin_reference_stamp('recorded_at');
CREATE TRIGGER radfin_reference_stamp BEFORE INSERT ON clients
    FOR EACH ROW EXECUTE FUNCTION radfin_reference_stamp('recorded_at');
CREATE TRIGGER radfin_reference_stamp BEFORE INSERT ON provider_pricing_rules
    FOR EACH ROW EXECUTE FUNCTION radfin_reference_stamp('recorded_at');
CREATE TRIGGER radfin_reference_stamp BEFORE INSERT ON client_pricing_rules
    FOR EACH ROW EXECUTE FUNCTION radfin_reference_stamp('recorded_at');
CREATE TRIGGER radfin_reference_stamp BEFORE INSERT ON fx_rates
    FOR EACH ROW EXECUTE FUNCTION radfin_reference_stamp('fetched_at');

-- Pricing reads its data version from the clock.
GRANT SELECT ON reference_clock TO radfin_pricing;
