//! Conversions between stored values and domain types. A stored value the domain refuses is
//! [`StorageError::Corrupt`], naming the table and column.

use std::fmt::Display;

use crate::StorageError;

/// PostgreSQL accepts at most this many bind parameters in one statement.
const MAX_BIND_PARAMS: usize = 65_535;

/// Rows per multi-row INSERT of a table with `columns` bound columns.
pub(crate) const fn rows_per_insert(columns: usize) -> usize {
    MAX_BIND_PARAMS / columns
}

/// Decodes a stored text value with the domain's parser (`FromStr`, `ReportId::parse`, …).
pub(crate) fn decode<T, E: Display>(
    column: &'static str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StorageError> {
    parse(value).map_err(|e| StorageError::corrupt(format_args!("{column} {value:?}: {e}")))
}

/// A stored revision (bigint) as the domain's u32.
pub(crate) fn revision_from_db(column: &'static str, value: i64) -> Result<u32, StorageError> {
    u32::try_from(value).map_err(|_| StorageError::corrupt(format_args!("{column} {value} is not a revision")))
}

/// A stored positive counter (int) as u32.
pub(crate) fn u32_from_db(column: &'static str, value: i32) -> Result<u32, StorageError> {
    u32::try_from(value).map_err(|_| StorageError::corrupt(format_args!("{column} {value} is negative")))
}

/// A domain u32 for an `integer` column.
pub(crate) fn u32_to_db(column: &'static str, value: u32) -> Result<i32, StorageError> {
    i32::try_from(value).map_err(|_| StorageError::OutOfRange(format!("{column} {value} exceeds {}", i32::MAX)))
}

/// The start of `<column> IN (SELECT unnest($n))`; the caller binds the array and closes it with
/// `.sql("))")`. For the id lists of the less frequent paths: a semi-join at worst scans the
/// table once, where `<column> = ANY($n)` under statistics that lag behind a grown table can be
/// planned as a scan searching the array for every row (seen at 24 s for one batch of 2,000
/// report ids at a million reports). The hot paths look each key up on its own
/// (`reports::PER_KEY`).
pub(crate) fn in_array(column_in: &'static str) -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql(&format!("{column_in} (SELECT unnest("))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        assert_eq!(revision_from_db("reports.revision", 7).unwrap(), 7);
        assert!(matches!(revision_from_db("reports.revision", -1), Err(StorageError::Corrupt(_))));
        assert!(matches!(u32_to_db("x", u32::MAX), Err(StorageError::OutOfRange(_))));
        let err = decode("reports.modality", "PET", |s| s.parse::<radfin_domain::Modality>()).unwrap_err();
        assert!(err.to_string().starts_with("invalid stored data: reports.modality \"PET\": must be one of"));
        assert_eq!(rows_per_insert(10), 6553);
    }
}
