//! From live facts to ledger entries (spec §5, §6): each client-month is a [`LiveBook`]; a batch
//! of facts is applied to the books it touches inside one transaction that holds their
//! `live_books` rows locked, and the signed postings that bring each book to the engine's price
//! of its facts are appended with the facts themselves. Books stay in memory between batches and
//! are trusted only while their version equals the database's (another replica may have written
//! them); otherwise they are rebuilt from `ledger_facts` and checked against the entries.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use prost::Message as _;
use radfin_bus::Delivery;
use radfin_db::held::{HeldStatus, NewHold};
use radfin_db::ledger::{BookSlot, EntryReport, LedgerSide, NewLedgerEntry};
use radfin_db::live::{BookKey, NewFact};
use radfin_db::margin::{MarginDelta, MarginKey};
use radfin_db::{AsyncPgConnection, Pool, StorageError};
use radfin_domain::live::{FactKind, LineRef, LiveBook, LiveFact, Posting, Reason, Side, StudyFact};
use radfin_domain::{Period, ReportId};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use tokio::sync::Mutex;

/// A fact as received: decoded, and its bytes kept for `ledger_facts`.
pub struct Received {
    pub fact: LiveFact,
    pub bytes: Vec<u8>,
}

pub fn decode(d: &Delivery) -> Result<Received, String> {
    let msg: radfin_proto::pricing::v1::LiveFact = d.decode().map_err(|e| e.to_string())?;
    let fact = LiveFact::try_from(&msg).map_err(|e| format!("invalid live fact: {e}"))?;
    Ok(Received { fact, bytes: d.payload().to_vec() })
}

/// A book as this replica last wrote it.
struct Cached {
    version: i64,
    book: LiveBook,
    /// When the book's contract was priced (a staler contract fact is ignored).
    terms_at: Option<DateTime<Utc>>,
    /// The BOOKING entry of each line.
    bookings: FxHashMap<LineRef, i64>,
}

/// The books of this ledger replica.
#[derive(Default)]
pub struct Books {
    cache: Mutex<HashMap<BookKey, Cached>>,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    pub facts: usize,
    pub stale: usize,
    pub entries: usize,
    pub rebuilt: usize,
}

impl Books {
    /// Applies a batch of facts in one transaction; on failure nothing is written and the
    /// books it touched are dropped from memory (rebuilt on the next attempt).
    pub async fn apply(&self, pool: &Pool, batch: Vec<Received>) -> anyhow::Result<Applied> {
        let mut cache = self.cache.lock().await;
        let mut conn = pool.get().await.map_err(StorageError::from)?;
        let mut periods: Vec<Period> = batch.iter().map(|r| r.fact.period).collect();
        periods.sort();
        periods.dedup();
        radfin_db::ledger::ensure_partitions(&mut conn, &periods).await?;
        let mut taken: HashMap<BookKey, Cached> = HashMap::new();
        let result = {
            use diesel_async::AsyncConnection;
            let taken = &mut taken;
            let cache = &mut *cache;
            radfin_db::timed(
                "book_live_facts",
                conn.transaction(async |conn| {
                    radfin_db::ledger::lock_for_write(conn).await?;
                    apply_batch(conn, cache, taken, &batch).await
                }),
            )
            .await
        };
        match result {
            Ok(applied) => {
                cache.extend(taken);
                Ok(applied)
            }
            // Another replica wrote one of these books meanwhile (same book version): the books
            // are rebuilt from the database on the next attempt.
            Err(e @ StorageError::Conflict { .. }) => Err(radfin_service::consume::transient(e)),
            Err(e) => Err(e.into()),
        }
    }
}

fn book_of(fact: &LiveFact) -> BookKey {
    BookKey { period: fact.period, client_id: fact.client_id.clone(), run_id: i64::try_from(fact.run_id).unwrap_or(0) }
}

async fn apply_batch(
    conn: &mut AsyncPgConnection,
    cache: &mut HashMap<BookKey, Cached>,
    taken: &mut HashMap<BookKey, Cached>,
    batch: &[Received],
) -> Result<Applied, StorageError> {
    let mut applied = Applied::default();
    // Of several facts for one report in the batch, the newest (revision, then priced_at).
    let mut newest: HashMap<&ReportId, &Received> = HashMap::new();
    let mut contracts: Vec<&Received> = Vec::new();
    for r in batch {
        match r.fact.report() {
            Some((id, revision)) => {
                let keep = newest.get(id).is_none_or(|k| {
                    let (_, kept) = k.fact.report().unwrap_or((id, 0));
                    (revision, r.fact.priced_at) > (kept, k.fact.priced_at)
                });
                if keep {
                    newest.insert(id, r);
                }
            }
            None => contracts.push(r),
        }
    }
    let ids: Vec<&str> = newest.keys().map(|id| id.as_str()).collect();
    let latest: HashMap<ReportId, radfin_db::live::LatestFact> =
        radfin_db::live::latest_facts(conn, &ids).await?.into_iter().map(|l| (l.report_id.clone(), l)).collect();

    // Facts newer than what the ledger applied, and where their reports lived before.
    let mut accepted: Vec<(&Received, Option<BookKey>)> = Vec::new();
    for (id, r) in &newest {
        let (_, revision) = r.fact.report().unwrap_or((id, 0));
        match latest.get(*id) {
            Some(l) if (l.revision, l.priced_at) >= (revision, r.fact.priced_at) => applied.stale += 1,
            Some(l) => accepted.push((r, (l.book != book_of(&r.fact)).then(|| l.book.clone()))),
            None => accepted.push((r, None)),
        }
    }
    accepted.sort_by(|a, b| a.0.fact.report().cmp(&b.0.fact.report()));

    // A closed period takes no more live entries (spec §6): the period's lock, held shared here
    // and exclusively by a close, orders this batch before or after any close of its periods.
    let mut periods: Vec<Period> = accepted
        .iter()
        .flat_map(|(r, moved_from)| std::iter::once(r.fact.period).chain(moved_from.as_ref().map(|k| k.period)))
        .chain(contracts.iter().map(|r| r.fact.period))
        .collect();
    periods.sort();
    periods.dedup();
    for p in &periods {
        radfin_db::documents::lock_period(conn, *p, false).await?;
    }
    let statuses = radfin_db::documents::period_statuses(conn, Some(&periods)).await?;
    let current_run = |p: Period| statuses.get(&p).filter(|s| s.closed).and_then(|s| s.current_run_id);
    for (_, moved_from) in &mut accepted {
        if moved_from.as_ref().is_some_and(|k| current_run(k.period).is_some()) {
            *moved_from = None;
        }
    }
    let (late, accepted): (Vec<_>, Vec<_>) =
        accepted.into_iter().partition(|(r, _)| current_run(r.fact.period).is_some());
    contracts.retain(|r| current_run(r.fact.period).is_none());
    hold_late(conn, &late, &current_run).await?;

    let mut keys: Vec<BookKey> = accepted.iter().map(|(r, _)| book_of(&r.fact)).collect();
    keys.extend(accepted.iter().chain(&late).filter_map(|(_, moved_from)| moved_from.clone()));
    keys.extend(contracts.iter().map(|r| book_of(&r.fact)));
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        record_late(conn, &late).await?;
        return Ok(applied);
    }
    let versions = radfin_db::live::lock_books(conn, &keys).await?;
    for (key, version) in keys.iter().zip(versions) {
        let cached = match cache.remove(key) {
            Some(c) if c.version == version => c,
            _ => {
                applied.rebuilt += 1;
                rebuild(conn, key, version).await?
            }
        };
        taken.insert(key.clone(), cached);
    }

    // Apply: moves out of old books, then each fact to its own book.
    let mut recorded: Vec<(&Received, BookKey)> = Vec::new();
    for (r, moved_from) in &late {
        if let (Some(from), Some((id, _))) = (moved_from, r.fact.report())
            && let Some(c) = taken.get_mut(from)
        {
            c.book.remove(id, Reason::Moved);
        }
    }
    for (r, moved_from) in &accepted {
        if let (Some(from), Some((id, _))) = (moved_from, r.fact.report())
            && let Some(c) = taken.get_mut(from)
        {
            c.book.remove(id, Reason::Moved);
        }
        let key = book_of(&r.fact);
        if let Some(c) = taken.get_mut(&key) {
            apply_fact(c, &r.fact);
            recorded.push((r, key));
        }
    }
    for r in &contracts {
        let key = book_of(&r.fact);
        if let Some(c) = taken.get_mut(&key)
            && c.terms_at.is_none_or(|at| r.fact.priced_at > at)
        {
            apply_fact(c, &r.fact);
            recorded.push((r, key));
        }
    }
    applied.facts = recorded.len();

    // Settle every touched book and append its postings; the margin summary moves with them.
    let mut entries = Vec::new();
    let mut bumped = Vec::new();
    let mut margins: BTreeMap<MarginKey, MarginDelta> = BTreeMap::new();
    for key in &keys {
        let Some(c) = taken.get_mut(key) else { continue };
        let postings = c.book.settle().map_err(|e| StorageError::corrupt(format_args!("book {key:?}: {e}")))?;
        margin_deltas(key, &c.book, &postings, &mut margins);
        let wrote_facts = recorded.iter().any(|(_, k)| k == key);
        if postings.is_empty() && !wrote_facts {
            continue;
        }
        c.version += 1;
        bumped.push((key.clone(), c.version));
        for (n, p) in postings.into_iter().enumerate() {
            let adjusts_id = c.bookings.get(&p.line).copied();
            entries.push(entry(key, c.version, i32::try_from(n + 1).unwrap_or(i32::MAX), adjusts_id, p));
        }
    }
    let inserted = radfin_db::ledger::insert_entries(conn, &entries).await?;
    radfin_db::margin::add(conn, &margins).await?;
    applied.entries = inserted.len();
    // RETURNING yields the rows in the order of the VALUES list.
    if inserted.len() != entries.len() {
        return Err(StorageError::corrupt(format_args!(
            "{} entries written, {} returned",
            entries.len(),
            inserted.len()
        )));
    }
    for (e, i) in entries.iter().zip(&inserted).filter(|(e, _)| e.adjusts_id.is_none()) {
        let line = radfin_db::live::line_ref(i.report_id.as_deref(), &i.side, &i.line)?;
        let key = BookKey { period: e.period, client_id: e.client_id.clone(), run_id: e.run_id };
        if let Some(c) = taken.get_mut(&key) {
            c.bookings.insert(line, i.id);
        }
    }
    let versions: HashMap<&BookKey, i64> = bumped.iter().map(|(k, v)| (k, *v)).collect();
    let facts: Vec<NewFact<'_>> = recorded
        .iter()
        .map(|(r, key)| NewFact {
            book: key,
            report: r.fact.report(),
            outcome: r.fact.outcome(),
            book_version: versions.get(key).copied().unwrap_or(1),
            priced_at: r.fact.priced_at,
            fact: &r.bytes,
        })
        .collect();
    radfin_db::live::record_facts(conn, &facts).await?;
    radfin_db::live::set_versions(conn, &bumped).await?;
    record_late(conn, &late).await?;
    Ok(applied)
}

/// What a book's postings change in the margin summary (spec §7): their INR amounts by the
/// reports' modality and grade (`NONE` for client-level lines), and the billable reports — a
/// report counts where its COGS line holds a non-zero amount, before and after the postings.
fn margin_deltas(key: &BookKey, book: &LiveBook, postings: &[Posting], out: &mut BTreeMap<MarginKey, MarginDelta>) {
    let dims_key = |part: &radfin_domain::live::Part| -> (&'static str, &'static str) {
        part.dims.report.as_ref().map_or(("NONE", "NONE"), |r| (r.modality.as_str(), r.grade.as_str()))
    };
    let mut cogs_lines: Vec<&LineRef> = Vec::new();
    for p in postings {
        let (modality, grade) = dims_key(&p.part);
        let d = out.entry((key.period, key.client_id.to_string(), modality, grade)).or_default();
        match p.line.side() {
            Side::Revenue => d.revenue_inr += p.part.amount_inr,
            Side::Cogs => {
                d.cogs_inr += p.part.amount_inr;
                if matches!(p.line, LineRef::Study(..)) && !cogs_lines.contains(&&p.line) {
                    cogs_lines.push(&p.line);
                }
            }
        }
    }
    for line in cogs_lines {
        // Amounts by (modality, grade) after the postings, and before them (after − posted).
        let mut amounts: BTreeMap<(&'static str, &'static str), (Decimal, Decimal)> = BTreeMap::new();
        for part in book.booked(line) {
            let a = amounts.entry(dims_key(part)).or_default();
            a.0 += part.amount;
            a.1 += part.amount;
        }
        for p in postings.iter().filter(|p| &p.line == line) {
            amounts.entry(dims_key(&p.part)).or_default().0 -= p.part.amount;
        }
        for ((modality, grade), (before, after)) in amounts {
            let counted = i64::from(!after.is_zero()) - i64::from(!before.is_zero());
            if counted != 0 {
                out.entry((key.period, key.client_id.to_string(), modality, grade)).or_default().reports += counted;
            }
        }
    }
}

/// Facts for closed periods: each priced report revision the period's current view does not
/// already hold is held as `HELD_CLOSED_PERIOD`, for a rerun to apply.
async fn hold_late(
    conn: &mut AsyncPgConnection,
    late: &[(&Received, Option<BookKey>)],
    current_run: &impl Fn(Period) -> Option<i64>,
) -> Result<(), StorageError> {
    let mut holds = Vec::new();
    let mut by_period: HashMap<Period, Vec<&StudyFact>> = HashMap::new();
    for (r, _) in late {
        if let FactKind::Priced(study) = &r.fact.kind {
            by_period.entry(r.fact.period).or_default().push(study);
        }
    }
    for (period, studies) in by_period {
        let Some(run_id) = current_run(period) else { continue };
        let ids: Vec<(&str, u32)> = studies.iter().map(|s| (s.report_id.as_str(), s.revision)).collect();
        let booked = radfin_db::ledger::booked_in_run(conn, period, run_id, &ids).await?;
        let client_of: HashMap<&ReportId, &radfin_domain::ClientId> =
            late.iter().filter_map(|(r, _)| r.fact.report().map(|(id, _)| (id, &r.fact.client_id))).collect();
        for s in studies {
            if booked.contains(&(s.report_id.to_string(), s.revision)) {
                continue;
            }
            let Some(client_id) = client_of.get(&s.report_id) else { continue };
            holds.push(NewHold {
                report_id: s.report_id.clone(),
                revision: s.revision,
                client_id: (*client_id).clone(),
                provider_id: s.provider_id.clone(),
                period,
                status: HeldStatus::HeldClosedPeriod,
                reason: format!("period {period} is closed; a rerun of it applies this report"),
            });
        }
    }
    radfin_db::held::hold(conn, &holds).await?;
    Ok(())
}

/// Records the facts for closed periods (the reconciler then knows they arrived); no book
/// changes.
async fn record_late(conn: &mut AsyncPgConnection, late: &[(&Received, Option<BookKey>)]) -> Result<(), StorageError> {
    let keys: Vec<BookKey> = late.iter().map(|(r, _)| book_of(&r.fact)).collect();
    let facts: Vec<NewFact<'_>> = late
        .iter()
        .zip(&keys)
        .map(|((r, _), key)| NewFact {
            book: key,
            report: r.fact.report(),
            outcome: r.fact.outcome(),
            book_version: 1,
            priced_at: r.fact.priced_at,
            fact: &r.bytes,
        })
        .collect();
    radfin_db::live::record_facts(conn, &facts).await
}

fn apply_fact(c: &mut Cached, fact: &LiveFact) {
    if let Some(terms) = &fact.terms
        && c.terms_at.is_none_or(|at| fact.priced_at >= at)
    {
        c.book.set_terms(terms.clone());
        c.terms_at = Some(fact.priced_at);
    }
    match &fact.kind {
        FactKind::Priced(study) => c.book.upsert(study.clone()),
        FactKind::Held { report_id, .. } => c.book.remove(report_id, Reason::Held),
        FactKind::Contract => {}
    }
}

/// A book from the database: its facts, then what the ledger holds for it.
async fn rebuild(conn: &mut AsyncPgConnection, key: &BookKey, version: i64) -> Result<Cached, StorageError> {
    let source = radfin_db::live::book_source(conn, key).await?;
    let parse = |bytes: &[u8]| -> Result<LiveFact, StorageError> {
        let msg = radfin_proto::pricing::v1::LiveFact::decode(bytes)
            .map_err(|e| StorageError::corrupt(format_args!("ledger_facts of {key:?}: {e}")))?;
        LiveFact::try_from(&msg).map_err(|e| StorageError::corrupt(format_args!("ledger_facts of {key:?}: {e}")))
    };
    let mut c = Cached { version, book: LiveBook::new(), terms_at: None, bookings: FxHashMap::default() };
    if let Some(bytes) = &source.terms_fact {
        let fact = parse(bytes)?;
        if let Some(terms) = fact.terms {
            c.book.set_terms(terms);
            c.terms_at = Some(fact.priced_at);
        }
    }
    for bytes in &source.report_facts {
        if let FactKind::Priced(study) = parse(bytes)?.kind {
            c.book.upsert(study);
        }
    }
    let mut booked: FxHashMap<LineRef, Vec<radfin_domain::live::Part>> = FxHashMap::default();
    for (line, part) in source.booked {
        booked.entry(line).or_default().push(part);
    }
    for (line, parts) in booked {
        c.book.set_booked(line, parts);
    }
    c.bookings = source.bookings.into_iter().collect();
    Ok(c)
}

fn entry(key: &BookKey, version: i64, line_no: i32, adjusts_id: Option<i64>, p: Posting) -> NewLedgerEntry {
    let (line, side, report_id) = match &p.line {
        LineRef::Study(id, side) => ("STUDY", *side, Some(id.clone())),
        LineRef::Client(kind) => (kind.as_str(), Side::Revenue, None),
    };
    let report = match (report_id, p.part.dims.report) {
        (Some(report_id), Some(d)) => Some(EntryReport {
            report_id,
            revision: d.revision,
            provider_id: d.provider_id,
            modality: d.modality,
            grade: d.grade,
            status: d.status,
        }),
        _ => None,
    };
    NewLedgerEntry {
        period: key.period,
        run_id: key.run_id,
        client_id: key.client_id.clone(),
        line,
        report,
        side: match side {
            Side::Cogs => LedgerSide::Cogs,
            Side::Revenue => LedgerSide::Revenue,
        },
        currency: p.part.dims.currency,
        amount: p.part.amount,
        fx: p.part.dims.fx,
        amount_inr: p.part.amount_inr,
        rule_version: p.part.dims.rule_version,
        reason: adjusts_id.map(|_| p.reason.as_str()),
        adjusts_id,
        book: Some(BookSlot { version, line_no }),
    }
}
