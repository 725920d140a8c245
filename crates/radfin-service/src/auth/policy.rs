//! Who may call what: the roles, their hierarchy, and the one table that maps each gRPC method
//! to the role it needs. A method not in the table needs `admin` (deny by default).

use std::fmt;
use std::str::FromStr;

/// A caller's role. `admin` may do everything `finance` may, `finance` everything `viewer` may;
/// `ingest` may only submit reports (it does not imply `viewer`), and `admin` may submit too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Report sources: the ingest submissions only.
    Ingest,
    /// Reads.
    Viewer,
    /// Reads and the finance operations: reference data, FX, sync, close, credit notes, the audit log.
    Finance,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Ingest, Role::Viewer, Role::Finance, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }

    /// Whether a caller with this role may call a method that needs `needed`.
    pub fn may(self, needed: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Finance => matches!(needed, Role::Finance | Role::Viewer),
            Role::Viewer => needed == Role::Viewer,
            Role::Ingest => needed == Role::Ingest,
        }
    }

    /// Whether a denied attempt on a method needing this role is audited: every role but `viewer`
    /// (reads are not privileged).
    pub fn is_privileged(self) -> bool {
        self != Role::Viewer
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (expected ingest, viewer, finance or admin)"))
    }
}

/// What calling a method takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// No token: gRPC health checking and server reflection.
    Public,
    /// A valid token whose role may act as this one.
    Role(Role),
}

/// Methods anyone may call, by path prefix.
pub const PUBLIC_PREFIXES: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The policy: every radfin gRPC method (full path) and the role it needs. One place; a method
/// missing here needs `admin`.
pub const POLICY: &[(&str, Role)] = &[
    // Ingest: submissions by report sources; the sync is a finance operation.
    ("/radfin.ingest.v1.IngestService/SubmitReport", Role::Ingest),
    ("/radfin.ingest.v1.IngestService/SubmitBatch", Role::Ingest),
    ("/radfin.ingest.v1.IngestService/SubmitStream", Role::Ingest),
    ("/radfin.ingest.v1.IngestService/SyncNow", Role::Finance),
    ("/radfin.ingest.v1.IngestService/ListSyncRuns", Role::Viewer),
    ("/radfin.ingest.v1.IngestService/GetReconcilerStatus", Role::Viewer),
    ("/radfin.ingest.v1.IngestService/ListDeadLetters", Role::Viewer),
    ("/radfin.ingest.v1.IngestService/RedriveDeadLetter", Role::Finance),
    // Pricing: reference data and FX rates are written by finance, read by viewers.
    ("/radfin.pricing.v1.PricingService/PutProvider", Role::Finance),
    ("/radfin.pricing.v1.PricingService/PutClient", Role::Finance),
    ("/radfin.pricing.v1.PricingService/PutProviderRules", Role::Finance),
    ("/radfin.pricing.v1.PricingService/PutClientRules", Role::Finance),
    ("/radfin.pricing.v1.PricingService/PutFxRate", Role::Finance),
    ("/radfin.pricing.v1.PricingService/FetchFxRates", Role::Finance),
    ("/radfin.pricing.v1.PricingService/ListProviders", Role::Viewer),
    ("/radfin.pricing.v1.PricingService/GetProvider", Role::Viewer),
    ("/radfin.pricing.v1.PricingService/ListClients", Role::Viewer),
    ("/radfin.pricing.v1.PricingService/GetClient", Role::Viewer),
    ("/radfin.pricing.v1.PricingService/ListRuleVersions", Role::Viewer),
    ("/radfin.pricing.v1.PricingService/GetRuleVersion", Role::Viewer),
    ("/radfin.pricing.v1.PricingService/ListFxRates", Role::Viewer),
    ("/radfin.pricing.v1.PricingService/ListHeldReports", Role::Viewer),
    // Ledger: reads, closing, credit notes, reruns and the audit log.
    ("/radfin.ledger.v1.LedgerService/ListReportEntries", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/ListPeriodEntries", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/SummarizePeriod", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/ClosePeriod", Role::Finance),
    ("/radfin.ledger.v1.LedgerService/IssueCreditNote", Role::Finance),
    ("/radfin.ledger.v1.LedgerService/RerunPeriod", Role::Admin),
    ("/radfin.ledger.v1.LedgerService/ListPeriods", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/ListInvoices", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/GetInvoice", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/ListCreditNotes", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/ListPayoutStatements", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/GetPayoutStatement", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/GetClientStatement", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/ListRuns", Role::Viewer),
    ("/radfin.ledger.v1.LedgerService/ListAuditEvents", Role::Finance),
    ("/radfin.ledger.v1.LedgerService/VerifyAuditLog", Role::Finance),
    // Reporting: the margin summary is read by viewers; rebuilding it is an admin's repair.
    ("/radfin.reporting.v1.ReportingService/Summarize", Role::Viewer),
    ("/radfin.reporting.v1.ReportingService/GetClientMonth", Role::Viewer),
    ("/radfin.reporting.v1.ReportingService/GetProviderMonth", Role::Viewer),
    ("/radfin.reporting.v1.ReportingService/ListTopClients", Role::Viewer),
    ("/radfin.reporting.v1.ReportingService/GetRerunEffect", Role::Viewer),
    ("/radfin.reporting.v1.ReportingService/WatchSummary", Role::Viewer),
    ("/radfin.reporting.v1.ReportingService/RebuildSummary", Role::Admin),
    // Not a gRPC method: the reporting service's HTTP dashboard (page, JSON and CSV) is
    // authorized as this path.
    ("/radfin.reporting.v1.Dashboard/View", Role::Viewer),
];

/// What calling the method at `path` (`/package.Service/Method`) takes.
pub fn requirement(path: &str) -> Requirement {
    if PUBLIC_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
        return Requirement::Public;
    }
    let role = POLICY.iter().find(|(method, _)| *method == path).map_or(Role::Admin, |(_, role)| *role);
    Requirement::Role(role)
}

/// The method's name in a path (`ClosePeriod` of `/radfin.ledger.v1.LedgerService/ClosePeriod`),
/// or the whole path when it has none.
pub fn method_name(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some((_, method)) if !method.is_empty() => method,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;

    fn needs(path: &str) -> Requirement {
        requirement(path)
    }

    #[test]
    fn hierarchy_admin_over_finance_over_viewer_and_ingest_apart() {
        use Role::*;
        let allowed: BTreeSet<(&str, &str)> = Role::ALL
            .iter()
            .flat_map(|caller| Role::ALL.iter().map(move |needed| (*caller, *needed)))
            .filter(|(caller, needed)| caller.may(*needed))
            .map(|(caller, needed)| (caller.as_str(), needed.as_str()))
            .collect();
        let expected: BTreeSet<(&str, &str)> = [
            (Admin, Admin),
            (Admin, Finance),
            (Admin, Viewer),
            (Admin, Ingest),
            (Finance, Finance),
            (Finance, Viewer),
            (Viewer, Viewer),
            (Ingest, Ingest),
        ]
        .iter()
        .map(|(caller, needed)| (caller.as_str(), needed.as_str()))
        .collect();
        assert_eq!(allowed, expected);
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.contains("unknown role \"root\""), "{err}");
        assert!("Admin".parse::<Role>().is_err(), "roles are lowercase");
    }

    #[test]
    fn policy_maps_methods_to_roles() {
        assert_eq!(needs("/radfin.ingest.v1.IngestService/SubmitReport"), Requirement::Role(Role::Ingest));
        assert_eq!(needs("/radfin.ingest.v1.IngestService/SubmitStream"), Requirement::Role(Role::Ingest));
        assert_eq!(needs("/radfin.ingest.v1.IngestService/SyncNow"), Requirement::Role(Role::Finance));
        assert_eq!(needs("/radfin.ingest.v1.IngestService/ListDeadLetters"), Requirement::Role(Role::Viewer));
        assert_eq!(needs("/radfin.ingest.v1.IngestService/RedriveDeadLetter"), Requirement::Role(Role::Finance));
        assert_eq!(needs("/radfin.pricing.v1.PricingService/PutFxRate"), Requirement::Role(Role::Finance));
        assert_eq!(needs("/radfin.pricing.v1.PricingService/ListHeldReports"), Requirement::Role(Role::Viewer));
        assert_eq!(needs("/radfin.ledger.v1.LedgerService/ClosePeriod"), Requirement::Role(Role::Finance));
        assert_eq!(needs("/radfin.ledger.v1.LedgerService/RerunPeriod"), Requirement::Role(Role::Admin));
        assert_eq!(needs("/radfin.ledger.v1.LedgerService/ListAuditEvents"), Requirement::Role(Role::Finance));
        assert_eq!(needs("/radfin.ledger.v1.LedgerService/GetClientStatement"), Requirement::Role(Role::Viewer));
        assert_eq!(needs("/radfin.reporting.v1.ReportingService/WatchSummary"), Requirement::Role(Role::Viewer));
        assert_eq!(needs("/radfin.reporting.v1.ReportingService/RebuildSummary"), Requirement::Role(Role::Admin));
        assert_eq!(needs("/radfin.reporting.v1.Dashboard/View"), Requirement::Role(Role::Viewer));
    }

    #[test]
    fn health_and_reflection_are_public() {
        assert_eq!(needs("/grpc.health.v1.Health/Check"), Requirement::Public);
        assert_eq!(needs("/grpc.health.v1.Health/Watch"), Requirement::Public);
        assert_eq!(needs("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), Requirement::Public);
        assert_eq!(needs("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"), Requirement::Public);
        // Only those: a look-alike service is not.
        assert_eq!(needs("/grpc.health.v1.HealthX/Check"), Requirement::Role(Role::Admin));
    }

    #[test]
    fn an_unknown_method_needs_admin() {
        for path in [
            "/radfin.ledger.v1.LedgerService/DropEverything",
            "/radfin.ledger.v2.LedgerService/ClosePeriod",
            "/radfin.ledger.v1.LedgerService/closeperiod",
            "/radfin.ledger.v1.LedgerService/ClosePeriod/",
            "/radfin.ledger.v1.LedgerServiceClosePeriod",
            "/",
            "",
        ] {
            assert_eq!(needs(path), Requirement::Role(Role::Admin), "{path}");
        }
    }

    #[test]
    fn method_names() {
        assert_eq!(method_name("/radfin.ledger.v1.LedgerService/ClosePeriod"), "ClosePeriod");
        assert_eq!(method_name("/x/"), "/x/");
        assert_eq!(method_name("nothing"), "nothing");
    }

    #[test]
    fn the_policy_has_each_method_once() {
        let mut seen = HashSet::new();
        for (path, _) in POLICY {
            let (service, method) = path.rsplit_once('/').expect("a method path");
            assert!(service.starts_with("/radfin.") && !method.is_empty(), "{path}");
            assert!(seen.insert(*path), "{path} is listed twice");
        }
    }

    /// Every rpc declared in `proto/radfin/**/*.proto` has its own line in the policy, so that a
    /// new method is a decision and not an accident of the admin default.
    #[test]
    fn every_rpc_in_the_protos_is_in_the_policy() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/radfin");
        let mut protos = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "proto") {
                    protos.push(path);
                }
            }
        }
        let mut rpcs = Vec::new();
        for proto in &protos {
            let text = std::fs::read_to_string(proto).expect("proto");
            let mut package = "";
            let mut service = String::new();
            for line in text.lines().map(str::trim) {
                if let Some(p) = line.strip_prefix("package ") {
                    package = p.trim_end_matches(';').trim();
                } else if let Some(s) = line.strip_prefix("service ") {
                    let name = s.split(|c: char| c.is_whitespace() || c == '{').next().unwrap_or_default();
                    service = format!("/{package}.{name}/");
                } else if let Some(r) = line.strip_prefix("rpc ") {
                    let method = r.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or_default();
                    rpcs.push((service.clone(), method.to_owned()));
                }
            }
        }
        assert!(rpcs.len() >= 20, "found only {rpcs:?} under {}", root.display());
        let missing: Vec<String> = rpcs
            .iter()
            .map(|(service, method)| format!("{service}{method}"))
            .filter(|path| !POLICY.iter().any(|(p, _)| p == path))
            .collect();
        assert!(missing.is_empty(), "rpcs without a line in auth::policy::POLICY: {missing:?}");
    }
}
