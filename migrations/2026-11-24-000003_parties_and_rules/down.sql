DROP TABLE client_pricing_rules;
DROP TABLE provider_pricing_rules;
DROP TABLE clients;
DROP TABLE providers;
