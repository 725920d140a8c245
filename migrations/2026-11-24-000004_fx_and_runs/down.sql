DROP TABLE pricing_runs;
DROP TABLE fx_rates;
