//! FX reference rates (`fx_rates`, append-only): INR per unit of a currency on a date, per source.
//!
//! Several rates may be stored for one date and currency; one is in effect (spec §4.3): a rate
//! put by hand (source [`MANUAL_SOURCE`]) supersedes the feeds' whatever the order they were
//! recorded in, and among rates put by hand, or among the feeds', the latest recorded wins
//! ([`radfin_domain::fx::supersedes`]). [`load`] and [`list`] apply it.

use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use radfin_domain::Currency;
use radfin_domain::fx::{FxRate, FxTable, MANUAL_SOURCE, in_effect};
use rust_decimal::Decimal;

use crate::StorageError;
use crate::convert::{decode, rows_per_insert};
use crate::schema::fx_rates;

/// A stored rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFxRate {
    pub id: i64,
    pub rate: FxRate,
    /// When it was recorded (fetched from a feed, or put by hand).
    pub fetched_at: DateTime<Utc>,
    /// Whether it is the rate in effect for its date and currency.
    pub in_effect: bool,
}

/// What [`put_manual`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManualPut {
    /// The rate was recorded and is now the one in effect; `superseded` was before, if any.
    Recorded { superseded: Option<StoredFxRate> },
    /// The same value, put by hand, is already the rate in effect: nothing was recorded.
    AlreadyInEffect,
    /// The same value was put by hand before and a later rate put by hand superseded it. `fx_rates`
    /// keeps one row per date, currency, source and value, so it cannot be recorded again;
    /// `by` is the rate in effect.
    Superseded { by: StoredFxRate },
}

#[derive(Insertable)]
#[diesel(table_name = fx_rates)]
struct FxInsert<'a> {
    rate_date: NaiveDate,
    currency: &'static str,
    inr_per_unit: Decimal,
    source: &'a str,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = fx_rates, check_for_backend(diesel::pg::Pg))]
struct FxRow {
    id: i64,
    rate_date: NaiveDate,
    currency: String,
    inr_per_unit: Decimal,
    source: String,
    fetched_at: DateTime<Utc>,
}

impl TryFrom<FxRow> for StoredFxRate {
    type Error = StorageError;

    fn try_from(row: FxRow) -> Result<Self, StorageError> {
        Ok(StoredFxRate {
            id: row.id,
            rate: FxRate {
                rate_date: row.rate_date,
                currency: decode("fx_rates.currency", &row.currency, Currency::parse)?,
                inr_per_unit: row.inr_per_unit,
                source: row.source,
            },
            fetched_at: row.fetched_at,
            in_effect: false,
        })
    }
}

/// Stores rates with multi-row inserts; a rate already stored (same date, currency, source
/// and value) is skipped. Returns how many rows were added.
pub async fn insert_rates(conn: &mut AsyncPgConnection, rates: &[FxRate]) -> Result<usize, StorageError> {
    if rates.is_empty() {
        return Ok(0);
    }
    let rows: Vec<FxInsert<'_>> = rates
        .iter()
        .map(|r| FxInsert {
            rate_date: r.rate_date,
            currency: r.currency.code(),
            inr_per_unit: r.inr_per_unit,
            source: &r.source,
        })
        .collect();
    conn.transaction(async |conn| {
        let mut added = 0;
        for chunk in rows.chunks(rows_per_insert(4)) {
            added += diesel::insert_into(fx_rates::table)
                .values(chunk)
                .on_conflict((fx_rates::rate_date, fx_rates::currency, fx_rates::source, fx_rates::inr_per_unit))
                .do_nothing()
                .execute(conn)
                .await?;
        }
        Ok(added)
    })
    .await
}

/// Records INR per unit of `currency` on `rate_date` put by hand (source [`MANUAL_SOURCE`]), so
/// that it is the rate in effect for that date and currency, unless it already is. Atomic (a
/// savepoint inside the caller's transaction); run it in a serializable transaction
/// ([`crate::transaction_with_retry`]) so that concurrent puts are decided one after the other.
pub async fn put_manual(
    conn: &mut AsyncPgConnection,
    rate_date: NaiveDate,
    currency: Currency,
    inr_per_unit: Decimal,
) -> Result<ManualPut, StorageError> {
    conn.transaction(async |conn| {
        let stored = list(conn, Some(currency), rate_date, rate_date).await?;
        let current = stored.iter().find(|r| r.in_effect).cloned();
        if let Some(same) = stored.iter().find(|r| r.rate.is_manual() && r.rate.inr_per_unit == inr_per_unit) {
            return Ok(match current {
                Some(by) if by.id != same.id => ManualPut::Superseded { by },
                _ => ManualPut::AlreadyInEffect,
            });
        }
        let rate = FxRate { rate_date, currency, inr_per_unit, source: MANUAL_SOURCE.to_owned() };
        match insert_rates(conn, std::slice::from_ref(&rate)).await? {
            // Recorded meanwhile by a put that committed first (outside a serializable transaction).
            0 => Ok(ManualPut::AlreadyInEffect),
            _ => Ok(ManualPut::Recorded { superseded: current }),
        }
    })
    .await
}

/// The rates that can price reports dated `from_date` to `to_date` (rate dates from
/// `from_date − max_age_days` on), in an [`FxTable`] with that age limit. Rows are added in the
/// order they were recorded, so for one date and currency the table keeps the rate in effect: the
/// latest put by hand if any, else the latest fetched.
pub async fn load(
    conn: &mut AsyncPgConnection,
    from_date: NaiveDate,
    to_date: NaiveDate,
    max_age_days: u32,
) -> Result<FxTable, StorageError> {
    let earliest = from_date.checked_sub_days(Days::new(u64::from(max_age_days))).unwrap_or(NaiveDate::MIN);
    let rows: Vec<FxRow> = fx_rates::table
        .filter(fx_rates::rate_date.between(earliest, to_date))
        .order((fx_rates::fetched_at.asc(), fx_rates::id.asc()))
        .select(FxRow::as_select())
        .load(conn)
        .await?;
    let mut table = FxTable::new(max_age_days);
    for row in rows {
        let id = row.id;
        let stored = StoredFxRate::try_from(row)?;
        table.add(stored.rate).map_err(|e| StorageError::corrupt(format_args!("fx_rates id {id}: {e}")))?;
    }
    Ok(table)
}

/// Stored rates with `rate_date` from `from` to `to` (of one currency, or all), by date,
/// currency and the order they were recorded in, each marked whether it is in effect.
pub async fn list(
    conn: &mut AsyncPgConnection,
    currency: Option<Currency>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<StoredFxRate>, StorageError> {
    let mut query = fx_rates::table
        .filter(fx_rates::rate_date.between(from, to))
        .order((fx_rates::rate_date.asc(), fx_rates::currency.asc(), fx_rates::fetched_at.asc(), fx_rates::id.asc()))
        .select(FxRow::as_select())
        .into_boxed();
    if let Some(currency) = currency {
        query = query.filter(fx_rates::currency.eq(currency.code()));
    }
    let rows: Vec<FxRow> = query.load(conn).await?;
    let mut stored: Vec<StoredFxRate> = rows.into_iter().map(StoredFxRate::try_from).collect::<Result<_, _>>()?;
    let rates: Vec<FxRate> = stored.iter().map(|r| r.rate.clone()).collect();
    for (row, in_effect) in stored.iter_mut().zip(in_effect(&rates)) {
        row.in_effect = in_effect;
    }
    Ok(stored)
}
