-- A rerun's comparison with the run it was compared with, kept with its manifest when it is
-- previewed: the differences per client and provider (split into price, volume and FX effects)
-- and the margin summary rows the period gets when the rerun is applied. Neither run's entries
-- ever change, so APPLY and the reporting service read what PREVIEW computed instead of reading
-- and comparing two months of entries again. Manifests kept before this have none (NOT VALID):
-- such a preview is previewed again before it is applied.
ALTER TABLE rerun_manifests
    ADD COLUMN comparison jsonb NULL,
    ADD CONSTRAINT rerun_manifests_comparison_check CHECK (comparison IS NOT NULL) NOT VALID;
