//! Report revisions as ingested (`reports`, append-only) and the transactional outbox of the
//! revisions not yet published to the bus (`report_outbox`).

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use radfin_domain::{ClientId, Period, ProviderId, ReportEvent, ReportId};

use crate::convert::{decode, in_array, revision_from_db, rows_per_insert};
use crate::schema::{report_outbox, reports};
use crate::{RevisionConflict, StorageError};

/// A report revision to store, with the period its `finalized_at` falls in (computed by the
/// caller's business calendar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReport {
    pub event: ReportEvent,
    pub period: Period,
}

impl NewReport {
    /// A report to store; `finalized_at` is cut to the microsecond, PostgreSQL's precision, so
    /// that the event kept here is exactly what is stored. ([`insert_batch`] does the same with
    /// whatever it is given, so a redelivery with nanoseconds is still a duplicate.)
    pub fn new(event: ReportEvent, period: Period) -> Self {
        Self { event, period }.normalized()
    }

    pub fn event(&self) -> &ReportEvent {
        &self.event
    }

    pub fn period(&self) -> Period {
        self.period
    }

    fn normalized(mut self) -> Self {
        self.event.finalized_at = self.event.finalized_at.trunc_subsecs(6);
        self
    }

    fn key(&self) -> (&str, u32) {
        (self.event.report_id.as_str(), self.event.revision)
    }

    fn owned_key(&self) -> (ReportId, u32) {
        (self.event.report_id.clone(), self.event.revision)
    }
}

/// What [`insert_batch`] did with one report of the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored as `seq` and queued in the outbox.
    Inserted { seq: i64 },
    /// Already stored with identical content as `seq` (or given twice in the batch): nothing written.
    Duplicate { seq: i64 },
}

impl InsertOutcome {
    pub fn seq(self) -> i64 {
        match self {
            InsertOutcome::Inserted { seq } | InsertOutcome::Duplicate { seq } => seq,
        }
    }
}

/// A stored report revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    /// Ingest order.
    pub seq: i64,
    pub event: ReportEvent,
    pub period: Period,
    pub received_at: DateTime<Utc>,
}

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = reports, check_for_backend(diesel::pg::Pg))]
struct ReportRow {
    seq: i64,
    report_id: String,
    revision: i64,
    client_id: String,
    provider_id: String,
    modality: String,
    body_regions: i16,
    priority: String,
    finalized_at: DateTime<Utc>,
    status: String,
    period: String,
    received_at: DateTime<Utc>,
}

impl TryFrom<ReportRow> for StoredReport {
    type Error = StorageError;

    fn try_from(row: ReportRow) -> Result<Self, StorageError> {
        let body_regions = u8::try_from(row.body_regions)
            .map_err(|_| StorageError::corrupt(format_args!("reports.body_regions {}", row.body_regions)))?;
        let event = ReportEvent {
            report_id: decode("reports.report_id", &row.report_id, ReportId::parse)?,
            revision: revision_from_db("reports.revision", row.revision)?,
            client_id: decode("reports.client_id", &row.client_id, ClientId::parse)?,
            provider_id: decode("reports.provider_id", &row.provider_id, ProviderId::parse)?,
            modality: decode("reports.modality", &row.modality, str::parse)?,
            body_regions,
            priority: decode("reports.priority", &row.priority, str::parse)?,
            finalized_at: row.finalized_at,
            status: decode("reports.status", &row.status, str::parse)?,
        };
        let period = decode("reports.period", &row.period, str::parse)?;
        Ok(StoredReport { seq: row.seq, event, period, received_at: row.received_at })
    }
}

#[derive(Insertable)]
#[diesel(table_name = reports)]
struct ReportInsert<'a> {
    report_id: &'a str,
    revision: i64,
    client_id: &'a str,
    provider_id: &'a str,
    modality: &'static str,
    body_regions: i16,
    priority: &'static str,
    finalized_at: DateTime<Utc>,
    status: &'static str,
    period: String,
}

impl<'a> From<&'a NewReport> for ReportInsert<'a> {
    fn from(r: &'a NewReport) -> Self {
        let e = &r.event;
        ReportInsert {
            report_id: e.report_id.as_str(),
            revision: i64::from(e.revision),
            client_id: e.client_id.as_str(),
            provider_id: e.provider_id.as_str(),
            modality: e.modality.as_str(),
            body_regions: i16::from(e.body_regions),
            priority: e.priority.as_str(),
            finalized_at: e.finalized_at,
            status: e.status.as_str(),
            period: r.period.to_string(),
        }
    }
}

/// What to do with one row of a batch.
enum Plan {
    /// The first occurrence of its key in the batch.
    First,
    /// The same content as row `i` of the batch.
    SameAs(usize),
}

/// Stores a batch of report revisions, atomically: in one transaction (a savepoint of the
/// caller's, if any) every new revision is inserted with one multi-row
/// `INSERT … ON CONFLICT (report_id, revision) DO NOTHING RETURNING` per chunk and queued in the
/// outbox; a revision stored before with identical content is a [`InsertOutcome::Duplicate`].
///
/// If any revision exists (or occurs earlier in the batch) with different content, nothing of
/// the batch is written and the error is [`StorageError::ConflictingRevisions`], naming every
/// such revision. Outcomes are in the order of `batch`.
pub async fn insert_batch(
    conn: &mut AsyncPgConnection,
    batch: &[NewReport],
) -> Result<Vec<InsertOutcome>, StorageError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let batch: Vec<NewReport> = batch.iter().cloned().map(NewReport::normalized).collect();
    conn.transaction(async |conn| insert_batch_in_transaction(conn, &batch).await).await
}

async fn insert_batch_in_transaction(
    conn: &mut AsyncPgConnection,
    batch: &[NewReport],
) -> Result<Vec<InsertOutcome>, StorageError> {
    // (batch row, conflict), so that conflicts are reported in batch order.
    let mut conflicts: Vec<(usize, RevisionConflict)> = Vec::new();
    let mut first: HashMap<(&str, u32), usize> = HashMap::with_capacity(batch.len());
    let mut plans = Vec::with_capacity(batch.len());
    for (i, report) in batch.iter().enumerate() {
        match first.get(&report.key()) {
            None => {
                first.insert(report.key(), i);
                plans.push(Plan::First);
            }
            Some(&j) if batch[j] == *report => plans.push(Plan::SameAs(j)),
            Some(_) => {
                conflicts.push((i, conflict(report, None)));
                plans.push(Plan::First);
            }
        }
    }

    // Outcome of each first occurrence, from what is stored already.
    let mut outcomes: Vec<Option<InsertOutcome>> = vec![None; batch.len()];
    let mut firsts: Vec<usize> = first.values().copied().collect();
    // Batch order: `seq` is the ingest order.
    firsts.sort_unstable();
    let stored = load_keys(conn, firsts.iter().map(|&i| &batch[i])).await?;
    let mut to_insert = Vec::new();
    for &i in &firsts {
        match stored.get(&batch[i].owned_key()) {
            Some(existing) => outcomes[i] = Some(compare(i, &batch[i], existing, &mut conflicts)),
            None => to_insert.push(i),
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicting(conflicts));
    }

    let mut inserted: HashMap<(String, i64), i64> = HashMap::with_capacity(to_insert.len());
    for chunk in to_insert.chunks(rows_per_insert(10)) {
        let rows: Vec<ReportInsert<'_>> = chunk.iter().map(|&i| ReportInsert::from(&batch[i])).collect();
        let returned: Vec<(i64, String, i64)> = diesel::insert_into(reports::table)
            .values(&rows)
            .on_conflict((reports::report_id, reports::revision))
            .do_nothing()
            .returning((reports::seq, reports::report_id, reports::revision))
            .get_results(conn)
            .await?;
        inserted.extend(returned.into_iter().map(|(seq, id, revision)| ((id, revision), seq)));
    }

    // Rows another transaction stored between the lookup and the insert.
    let mut raced = Vec::new();
    for &i in &to_insert {
        let (id, revision) = batch[i].key();
        match inserted.get(&(id.to_owned(), i64::from(revision))) {
            Some(&seq) => outcomes[i] = Some(InsertOutcome::Inserted { seq }),
            None => raced.push(i),
        }
    }
    if !raced.is_empty() {
        let stored = load_keys(conn, raced.iter().map(|&i| &batch[i])).await?;
        for &i in &raced {
            let existing = stored.get(&batch[i].owned_key()).ok_or_else(|| {
                StorageError::corrupt(format_args!(
                    "report {} was neither inserted nor found",
                    batch[i].event.report_id
                ))
            })?;
            outcomes[i] = Some(compare(i, &batch[i], existing, &mut conflicts));
        }
        if !conflicts.is_empty() {
            // Returning an error rolls the transaction (or savepoint) back: nothing is written.
            return Err(conflicting(conflicts));
        }
    }

    let mut new_seqs: Vec<i64> = inserted.into_values().collect();
    new_seqs.sort_unstable();
    for chunk in new_seqs.chunks(rows_per_insert(1)) {
        let rows: Vec<_> = chunk.iter().map(|&seq| report_outbox::seq.eq(seq)).collect();
        diesel::insert_into(report_outbox::table).values(&rows).execute(conn).await?;
    }

    plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let outcome = match plan {
                Plan::First => outcomes[i],
                Plan::SameAs(j) => outcomes[*j].map(|o| InsertOutcome::Duplicate { seq: o.seq() }),
            };
            outcome.ok_or_else(|| StorageError::corrupt(format_args!("no outcome for batch row {i}")))
        })
        .collect()
}

fn conflict(report: &NewReport, existing_seq: Option<i64>) -> RevisionConflict {
    RevisionConflict { report_id: report.event.report_id.clone(), revision: report.event.revision, existing_seq }
}

fn conflicting(mut conflicts: Vec<(usize, RevisionConflict)>) -> StorageError {
    conflicts.sort_by_key(|(i, _)| *i);
    StorageError::ConflictingRevisions { conflicts: conflicts.into_iter().map(|(_, c)| c).collect() }
}

/// A duplicate of what is stored, or (recorded in `conflicts`) a conflict with it.
fn compare(
    i: usize,
    new: &NewReport,
    stored: &StoredReport,
    conflicts: &mut Vec<(usize, RevisionConflict)>,
) -> InsertOutcome {
    if stored.event != new.event || stored.period != new.period {
        conflicts.push((i, conflict(new, Some(stored.seq))));
    }
    InsertOutcome::Duplicate { seq: stored.seq }
}

/// The lookup of a batch's keys in `reports`, one key at a time: `unnest($1) AS k(key) CROSS
/// JOIN LATERAL (PER_KEY WHERE <column> = k.key …)`, the subquery fenced (`OFFSET 0` or `LIMIT`)
/// so that it stays an index lookup per key. `<column> = ANY($1)` or a semi-join lets the planner
/// choose a scan of the whole table when its statistics lag behind a month arriving: seen as
/// 24 s (a linear search of the array per row) and then 100–160 ms per 2,000-key batch at a
/// million reports, growing with the table.
const PER_KEY: &str = "SELECT seq, report_id, revision, client_id, provider_id, modality, body_regions, priority, \
     finalized_at, status, period, received_at FROM reports";

/// The stored rows of the given keys, by key.
async fn load_keys<'a>(
    conn: &mut AsyncPgConnection,
    reports: impl Iterator<Item = &'a NewReport>,
) -> Result<HashMap<(ReportId, u32), StoredReport>, StorageError> {
    let mut wanted: HashMap<&str, Vec<u32>> = HashMap::new();
    for r in reports {
        wanted.entry(r.event.report_id.as_str()).or_default().push(r.event.revision);
    }
    let ids: Vec<&str> = wanted.keys().copied().collect();
    let rows: Vec<ReportRow> = diesel::sql_query(format!(
        "SELECT r.* FROM unnest($1::text[]) AS k(key) CROSS JOIN LATERAL ({PER_KEY} WHERE report_id = k.key OFFSET 0) r"
    ))
    .bind::<Array<Text>, _>(&ids)
    .load(conn)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let wanted_here =
            wanted.get(row.report_id.as_str()).is_some_and(|revs| revs.iter().any(|&r| i64::from(r) == row.revision));
        if wanted_here {
            let stored = StoredReport::try_from(row)?;
            found.insert((stored.event.report_id.clone(), stored.event.revision), stored);
        }
    }
    Ok(found)
}

/// Up to `limit` outbox entries with a `seq` above `after`, oldest first: the revisions committed
/// but not yet published. Concurrent publishers may read the same entries; the bus deduplicates
/// by message id.
///
/// `after` lets a relay that is working through a long outbox start past what it has already
/// published: the outbox's index still holds the deleted entries until vacuum removes them, and
/// a scan from the start would step over all of them on every read. (An entry committed late
/// with a lower `seq` is not above `after`: the relay also reads from 0, see `radfin_ingest`.)
/// The reports are then read by primary key, one index lookup each, however large the month.
pub async fn pending_outbox(
    conn: &mut AsyncPgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, ReportEvent, Period)>, StorageError> {
    let seqs: Vec<i64> = report_outbox::table
        .filter(report_outbox::seq.gt(after))
        .select(report_outbox::seq)
        .order(report_outbox::seq.asc())
        .limit(limit)
        .load(conn)
        .await?;
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ReportRow> = diesel::sql_query(format!(
        "SELECT r.* FROM unnest($1::int8[]) AS k(key) CROSS JOIN LATERAL ({PER_KEY} WHERE seq = k.key OFFSET 0) r \
         ORDER BY r.seq"
    ))
    .bind::<Array<BigInt>, _>(&seqs)
    .load(conn)
    .await?;
    rows.into_iter().map(|row| StoredReport::try_from(row).map(|s| (s.seq, s.event, s.period))).collect()
}

/// How many entries the outbox holds and when the oldest was queued (`None` when it is empty):
/// what the relay has still to publish.
pub async fn outbox_depth(conn: &mut AsyncPgConnection) -> Result<(i64, Option<DateTime<Utc>>), StorageError> {
    let depth = report_outbox::table
        .select((diesel::dsl::count_star(), diesel::dsl::min(report_outbox::created_at)))
        .first(conn)
        .await?;
    Ok(depth)
}

/// Removes published entries from the outbox; returns how many there were.
pub async fn mark_published(conn: &mut AsyncPgConnection, seqs: &[i64]) -> Result<usize, StorageError> {
    if seqs.is_empty() {
        return Ok(0);
    }
    let deleted = diesel::delete(
        report_outbox::table.filter(in_array("report_outbox.seq IN").bind::<Array<BigInt>, _>(seqs).sql("))")),
    )
    .execute(conn)
    .await?;
    Ok(deleted)
}

/// The revision stored as `seq`.
pub async fn by_seq(conn: &mut AsyncPgConnection, seq: i64) -> Result<Option<StoredReport>, StorageError> {
    let row: Option<ReportRow> =
        reports::table.find(seq).select(ReportRow::as_select()).first(conn).await.optional()?;
    row.map(StoredReport::try_from).transpose()
}

/// One revision of a report.
pub async fn get(
    conn: &mut AsyncPgConnection,
    report_id: &ReportId,
    revision: u32,
) -> Result<Option<StoredReport>, StorageError> {
    let row: Option<ReportRow> = reports::table
        .filter(reports::report_id.eq(report_id.as_str()))
        .filter(reports::revision.eq(i64::from(revision)))
        .select(ReportRow::as_select())
        .first(conn)
        .await
        .optional()?;
    row.map(StoredReport::try_from).transpose()
}

/// The current revision (the highest stored) of each report of a client's period, in billing
/// order (`finalized_at`, `report_id`). A report whose higher revision moved to another client
/// or period is not in this one any more.
pub async fn current_of_client_period(
    conn: &mut AsyncPgConnection,
    client_id: &ClientId,
    period: Period,
) -> Result<Vec<ReportEvent>, StorageError> {
    current(conn, Some(client_id), period).await
}

/// The current revision of each report of a period, all clients, in billing order.
pub async fn current_of_period(conn: &mut AsyncPgConnection, period: Period) -> Result<Vec<ReportEvent>, StorageError> {
    current(conn, None, period).await
}

async fn current(
    conn: &mut AsyncPgConnection,
    client_id: Option<&ClientId>,
    period: Period,
) -> Result<Vec<ReportEvent>, StorageError> {
    let newer = diesel::alias!(reports as newer);
    let superseded = newer
        .filter(newer.field(reports::report_id).eq(reports::report_id))
        .filter(newer.field(reports::revision).gt(reports::revision));
    let mut query = reports::table
        .filter(reports::period.eq(period.to_string()))
        .filter(diesel::dsl::not(diesel::dsl::exists(superseded)))
        .select(ReportRow::as_select())
        .order((reports::finalized_at.asc(), reports::report_id.asc()))
        .into_boxed();
    if let Some(client_id) = client_id {
        query = query.filter(reports::client_id.eq(client_id.as_str()));
    }
    let rows: Vec<ReportRow> = query.load(conn).await?;
    rows.into_iter().map(|row| StoredReport::try_from(row).map(|s| s.event)).collect()
}

/// Current revisions the ledger has no record of, for the reconciler: the highest stored
/// revision of a report, received before `received_before`, no longer in the outbox (so
/// published), and without a `ledger_facts` row for its (report_id, revision). At most `limit`
/// of them with `seq > after_seq`, in `seq` order, so a caller pages by the last `seq` it got.
///
/// Three anti-joins, each an index probe: a higher revision (`reports (report_id, revision)`),
/// the outbox (its key) and the facts (`ledger_facts (report_id, revision, id)`).
pub async fn missing_from_ledger(
    conn: &mut AsyncPgConnection,
    received_before: DateTime<Utc>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredReport>, StorageError> {
    use crate::schema::ledger_facts;

    let newer = diesel::alias!(reports as newer);
    let superseded = newer
        .filter(newer.field(reports::report_id).eq(reports::report_id))
        .filter(newer.field(reports::revision).gt(reports::revision));
    let queued = report_outbox::table.filter(report_outbox::seq.eq(reports::seq));
    let recorded = ledger_facts::table
        .filter(ledger_facts::report_id.eq(reports::report_id.nullable()))
        .filter(ledger_facts::revision.eq(reports::revision.nullable()));
    let rows: Vec<ReportRow> = reports::table
        .filter(reports::seq.gt(after_seq))
        .filter(reports::received_at.lt(received_before))
        .filter(diesel::dsl::not(diesel::dsl::exists(superseded)))
        .filter(diesel::dsl::not(diesel::dsl::exists(queued)))
        .filter(diesel::dsl::not(diesel::dsl::exists(recorded)))
        .select(ReportRow::as_select())
        .order(reports::seq.asc())
        .limit(limit.max(0))
        .load(conn)
        .await?;
    rows.into_iter().map(StoredReport::try_from).collect()
}

/// Which of `report_ids` have at least one stored revision.
pub async fn stored_report_ids(
    conn: &mut AsyncPgConnection,
    report_ids: &[String],
) -> Result<std::collections::HashSet<String>, StorageError> {
    if report_ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let found: Vec<String> = reports::table
        .filter(in_array("reports.report_id IN").bind::<Array<Text>, _>(report_ids).sql("))"))
        .select(reports::report_id)
        .distinct()
        .load(conn)
        .await?;
    Ok(found.into_iter().collect())
}

/// The highest stored revision of each of `report_ids` (those stored at all).
pub async fn latest_of(conn: &mut AsyncPgConnection, report_ids: &[&str]) -> Result<Vec<ReportEvent>, StorageError> {
    if report_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = report_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<ReportRow> = diesel::sql_query(format!(
        "SELECT r.* FROM unnest($1::text[]) AS k(key) \
         CROSS JOIN LATERAL ({PER_KEY} WHERE report_id = k.key ORDER BY revision DESC LIMIT 1) r"
    ))
    .bind::<Array<Text>, _>(&ids)
    .load(conn)
    .await?;
    rows.into_iter().map(|row| StoredReport::try_from(row).map(|s| s.event)).collect()
}

/// How far the reconciler need not look again: the highest `seq` S ≥ `after_seq` such that
/// every stored revision with `after_seq < seq ≤ S` was received before `received_before` and
/// is settled (superseded by a higher revision, or with a `ledger_facts` row). Both are
/// permanent, as both tables are append-only, so a caller that has seen them settled may start
/// its next search after S. (A revision committed later with a lower `seq` would be missed:
/// `received_before` should leave room for the longest transaction that inserts reports.)
/// Reads only the revisions after `after_seq`, in `seq` order, up to the first unsettled one.
pub async fn settled_through(
    conn: &mut AsyncPgConnection,
    after_seq: i64,
    received_before: DateTime<Utc>,
) -> Result<i64, StorageError> {
    use crate::schema::ledger_facts;

    let newer = diesel::alias!(reports as newer);
    let superseded = newer
        .filter(newer.field(reports::report_id).eq(reports::report_id))
        .filter(newer.field(reports::revision).gt(reports::revision));
    let recorded = ledger_facts::table
        .filter(ledger_facts::report_id.eq(reports::report_id.nullable()))
        .filter(ledger_facts::revision.eq(reports::revision.nullable()));
    let unsettled =
        diesel::dsl::not(diesel::dsl::exists(superseded)).and(diesel::dsl::not(diesel::dsl::exists(recorded)));
    let first_unsettled: Option<i64> = reports::table
        .filter(reports::seq.gt(after_seq))
        .filter(reports::received_at.ge(received_before).or(unsettled))
        .select(reports::seq)
        .order(reports::seq.asc())
        .first(conn)
        .await
        .optional()?;
    if let Some(seq) = first_unsettled {
        return Ok(seq - 1);
    }
    let last: Option<i64> =
        reports::table.filter(reports::seq.gt(after_seq)).select(diesel::dsl::max(reports::seq)).first(conn).await?;
    Ok(last.unwrap_or(after_seq))
}
