//! [`StorageError`]: what can go wrong at the storage boundary, with diesel's errors translated by
//! SQLSTATE into the cases callers branch on.

use std::fmt;

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind};
use radfin_domain::ReportId;

/// The `CONSTRAINT` field the append-only trigger sets along with SQLSTATE `RF001` (see the
/// first migration). diesel does not expose the SQLSTATE of codes it has no kind for, so this
/// field, which PostgreSQL never translates, is how `RF001` is recognized.
pub const APPEND_ONLY_MARKER: &str = "radfin_append_only";

/// A revision of a report that is already stored (or given earlier in the same batch) with
/// different content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionConflict {
    pub report_id: ReportId,
    pub revision: u32,
    /// The stored row's `seq`; `None` when the other content came earlier in the same batch.
    pub existing_seq: Option<i64>,
}

impl fmt::Display for RevisionConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "report {} revision {} already exists with different content", self.report_id, self.revision)
    }
}

/// An error of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique constraint refused a row (SQLSTATE 23505).
    #[error("unique constraint {constraint} violated: {message}")]
    Conflict { constraint: String, message: String },

    /// Revisions of a batch that exist with different content; the batch wrote nothing.
    #[error("{}", join(conflicts))]
    ConflictingRevisions { conflicts: Vec<RevisionConflict> },

    /// An UPDATE, DELETE or TRUNCATE of an append-only table (SQLSTATE RF001).
    #[error("{message}")]
    AppendOnly { message: String },

    /// The connected role lacks a privilege or ownership (SQLSTATE 42501).
    #[error("{message}")]
    PermissionDenied { message: String },

    /// A serialization failure (40001) or deadlock (40P01): running the transaction again may succeed.
    #[error("transaction aborted by a concurrent one, retry it: {message}")]
    Retryable { message: String },

    /// No pooled connection could be had (timeout, or the pool is closed).
    #[error("no database connection available: {0}")]
    Pool(#[source] diesel_async::pooled_connection::deadpool::PoolError),

    /// The pool could not be built from its configuration.
    #[error("{0}")]
    InvalidConfig(String),

    /// A connection could not be established.
    #[error("cannot connect to the database: {0}")]
    Connection(#[from] diesel::ConnectionError),

    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),

    /// A stored value the domain no longer accepts (a rule document that does not parse, an
    /// unknown enumeration name): the database holds something this code cannot read.
    #[error("invalid stored data: {0}")]
    Corrupt(String),

    /// A value that does not fit its column.
    #[error("value out of range: {0}")]
    OutOfRange(String),

    /// Any other database error.
    #[error("database error: {0}")]
    Query(#[source] diesel::result::Error),
}

fn join(conflicts: &[RevisionConflict]) -> String {
    let parts: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

impl StorageError {
    /// Whether doing the same again later may succeed: serialization failures, deadlocks, pool
    /// exhaustion and lost connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Retryable { .. } | StorageError::Connection(_) => true,
            StorageError::Pool(e) => matches!(e, deadpool::managed::PoolError::Timeout(_)),
            StorageError::Query(diesel::result::Error::DatabaseError(kind, _)) => {
                matches!(kind, DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand)
            }
            _ => false,
        }
    }

    /// Whether the write was refused because the row (or different content under its key) exists.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict { .. } | StorageError::ConflictingRevisions { .. })
    }

    pub(crate) fn corrupt(what: impl fmt::Display) -> Self {
        StorageError::Corrupt(what.to_string())
    }
}

impl From<diesel::result::Error> for StorageError {
    fn from(error: diesel::result::Error) -> Self {
        let diesel::result::Error::DatabaseError(kind, info) = &error else {
            return StorageError::Query(error);
        };
        classify(*kind, info.as_ref()).unwrap_or(StorageError::Query(error))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StorageError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        use deadpool::managed::PoolError;
        use diesel_async::pooled_connection::PoolError as ManagerError;
        match error {
            // The manager failed to connect: report it as the connection error it is.
            PoolError::Backend(ManagerError::ConnectionError(e)) => StorageError::Connection(e),
            PoolError::Backend(ManagerError::QueryError(e)) => StorageError::from(e),
            other => StorageError::Pool(other),
        }
    }
}

/// SQLSTATE → error. diesel maps 23505 and 40001 to kinds; for the codes it folds into
/// `Unknown`, the append-only trigger's marker field identifies RF001, and deadlocks (40P01)
/// and privilege errors (42501) are recognized by PostgreSQL's primary message, which is stable
/// under the `C`/English `lc_messages` the services run with.
fn classify(kind: DatabaseErrorKind, info: &(dyn DatabaseErrorInformation + Send + Sync)) -> Option<StorageError> {
    let message = info.message().to_owned();
    match kind {
        DatabaseErrorKind::UniqueViolation => {
            Some(StorageError::Conflict { constraint: info.constraint_name().unwrap_or_default().to_owned(), message })
        }
        DatabaseErrorKind::SerializationFailure => Some(StorageError::Retryable { message }),
        _ if info.constraint_name() == Some(APPEND_ONLY_MARKER) => Some(StorageError::AppendOnly { message }),
        _ if message == "deadlock detected" => Some(StorageError::Retryable { message }),
        _ if message.starts_with("permission denied") || message.starts_with("must be owner of") => {
            Some(StorageError::PermissionDenied { message })
        }
        _ => None,
    }
}
