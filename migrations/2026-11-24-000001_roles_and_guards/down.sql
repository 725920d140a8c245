-- The roles stay: they are cluster-wide and other databases of the cluster may use them.
DROP FUNCTION radfin_make_append_only(regclass, text, boolean);
DROP FUNCTION radfin_reject_change();
