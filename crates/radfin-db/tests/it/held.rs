//! `held`: hold, release, and what is held now.

use radfin_db::held::{self, HeldFilter, HeldStatus, NewHold};
use radfin_db::reports;
use radfin_domain::pricing::HoldReason;
use radfin_domain::{ClientId, ReportId};

use crate::support::{count, db, period, report};

fn hold(report_id: &str, revision: u32, status: HeldStatus, reason: &str) -> NewHold {
    NewHold {
        report_id: ReportId::parse(report_id).unwrap(),
        revision,
        client_id: ClientId::parse("HOSP-001").unwrap(),
        provider_id: radfin_domain::ProviderId::parse("RAD-007").unwrap(),
        period: period("2026-01"),
        status,
        reason: reason.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_are_listed_until_released() {
    let db = db().await;
    {
        let mut admin = db.pool().get().await.unwrap();
        let batch = [
            report("RPT-1", 1, "2026-01-10T10:00:00Z"),
            report("RPT-1", 2, "2026-01-10T11:00:00Z"),
            report("RPT-2", 1, "2026-01-11T10:00:00Z"),
            report("RPT-3", 1, "2026-01-12T10:00:00Z"),
        ];
        reports::insert_batch(&mut admin, &batch).await.unwrap();
    }
    let mut conn = db.connect_as("radfin_pricing").await.unwrap();
    let fx = hold("RPT-2", 1, HeldStatus::AwaitingFx, "no USD rate dated from 2026-01-04 to 2026-01-11");
    let no_rule = hold("RPT-3", 1, HeldStatus::of_reason(&HoldReason::NoClientRule), "no client rules");
    assert_eq!(
        held::hold(&mut conn, &[hold("RPT-1", 1, HeldStatus::UnknownParty, "no client"), fx.clone(), no_rule.clone()])
            .await
            .unwrap(),
        3
    );
    assert_eq!(held::hold(&mut conn, &[fx.clone(), no_rule.clone()]).await.unwrap(), 0, "holding again adds no event");

    let all = held::current(&mut conn, &HeldFilter::default()).await.unwrap();
    let keys: Vec<(&str, u32, HeldStatus)> = all.iter().map(|h| (h.report_id.as_str(), h.revision, h.status)).collect();
    assert_eq!(
        keys,
        [
            ("RPT-1", 1, HeldStatus::UnknownParty),
            ("RPT-2", 1, HeldStatus::AwaitingFx),
            ("RPT-3", 1, HeldStatus::NoRule)
        ]
    );
    let awaiting_fx = HeldFilter { status: Some(HeldStatus::AwaitingFx), ..HeldFilter::default() };
    assert_eq!(held::current(&mut conn, &awaiting_fx).await.unwrap()[0].reason, fx.reason);
    let other_client = HeldFilter { client_id: Some(ClientId::parse("HOSP-002").unwrap()), ..HeldFilter::default() };
    assert!(held::current(&mut conn, &other_client).await.unwrap().is_empty());
    let february = HeldFilter { period: Some(period("2026-02")), ..HeldFilter::default() };
    assert!(held::current(&mut conn, &february).await.unwrap().is_empty());

    // A new status for a held report is a new event; the report stays held once.
    assert_eq!(held::hold(&mut conn, &[hold("RPT-3", 1, HeldStatus::NoPrice, "no MRI price")]).await.unwrap(), 1);
    let now = held::current(&mut conn, &HeldFilter::default()).await.unwrap();
    assert_eq!(
        now.iter().filter(|h| h.report_id.as_str() == "RPT-3").map(|h| h.status).collect::<Vec<_>>(),
        [HeldStatus::NoPrice]
    );

    // Releasing revision 2 releases the held revision 1 it supersedes; releasing again does nothing.
    let rpt1 = ReportId::parse("RPT-1").unwrap();
    let rpt2 = ReportId::parse("RPT-2").unwrap();
    assert_eq!(held::release(&mut conn, &[(rpt1.clone(), 2), (rpt2.clone(), 1)]).await.unwrap(), 2);
    assert_eq!(held::release(&mut conn, &[(rpt1, 2), (rpt2, 1)]).await.unwrap(), 0);
    let left = held::current(&mut conn, &HeldFilter::default()).await.unwrap();
    assert_eq!(left.iter().map(|h| h.report_id.as_str()).collect::<Vec<_>>(), ["RPT-3"]);

    // Held again after a release.
    assert_eq!(held::hold(&mut conn, std::slice::from_ref(&fx)).await.unwrap(), 1);
    assert_eq!(held::current(&mut conn, &awaiting_fx).await.unwrap().len(), 1);
    let mut admin = db.pool().get().await.unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) AS n FROM held_reports").await, 7, "every event is kept");
}
