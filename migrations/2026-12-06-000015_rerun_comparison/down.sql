ALTER TABLE rerun_manifests DROP CONSTRAINT rerun_manifests_comparison_check, DROP COLUMN comparison;
