DROP TRIGGER radfin_reference_stamp ON fx_rates;
DROP TRIGGER radfin_reference_stamp ON client_pricing_rules;
DROP TRIGGER radfin_reference_stamp ON provider_pricing_rules;
DROP TRIGGER radfin_reference_stamp ON clients;
DROP TRIGGER radfin_reference_stamp ON providers;
DROP FUNCTION radfin_reference_stamp();
DROP TABLE reference_clock;
