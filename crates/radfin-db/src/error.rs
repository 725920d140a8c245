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
    /// exhaustion, a database that is unreachable, restarting or out of connection slots, and
    /// lost connections. A `false` is a bug, bad data or a refused write, which retrying does
    /// not fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Retryable { .. } => true,
            StorageError::Connection(e) => connection_retryable(e),
            StorageError::Pool(e) => pool_retryable(e),
            StorageError::Query(e) => diesel_retryable(e),
            _ => false,
        }
    }

    /// Whether `error`, an error of the database layer in whichever form it was passed on (a
    /// [`StorageError`], or diesel's, diesel-async's or the pool's own error that code turned
    /// into `anyhow::Error` with `?`), is retryable as [`StorageError::is_retryable`] tells;
    /// `None` when `error` is none of these. For callers that walk an error's chain.
    pub fn classify_retryable(error: &(dyn std::error::Error + 'static)) -> Option<bool> {
        if let Some(e) = error.downcast_ref::<StorageError>() {
            Some(e.is_retryable())
        } else if let Some(e) = error.downcast_ref::<diesel::result::Error>() {
            Some(diesel_retryable(e))
        } else if let Some(e) = error.downcast_ref::<diesel::ConnectionError>() {
            Some(connection_retryable(e))
        } else {
            error.downcast_ref::<diesel_async::pooled_connection::deadpool::PoolError>().map(pool_retryable)
        }
    }

    /// Whether the write was refused because the row (or different content under its key) exists.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict { .. } | StorageError::ConflictingRevisions { .. })
    }

    pub fn corrupt(what: impl fmt::Display) -> Self {
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

/// A connection could not be established. The pool was built (and one connection checked out)
/// at start, so later failures are the database being unreachable, restarting or full: retryable,
/// but for a URL that cannot be parsed.
fn connection_retryable(error: &diesel::ConnectionError) -> bool {
    !matches!(error, diesel::ConnectionError::InvalidCString(_) | diesel::ConnectionError::InvalidConnectionUrl(_))
}

fn pool_retryable(error: &diesel_async::pooled_connection::deadpool::PoolError) -> bool {
    use deadpool::managed::PoolError;
    use diesel_async::pooled_connection::PoolError as ManagerError;
    match error {
        PoolError::Timeout(_) => true,
        PoolError::Backend(ManagerError::ConnectionError(e)) => connection_retryable(e),
        PoolError::Backend(ManagerError::QueryError(e)) => diesel_retryable(e),
        _ => false,
    }
}

fn diesel_retryable(error: &diesel::result::Error) -> bool {
    use diesel::result::Error;
    match error {
        Error::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection => true,
            // diesel-async reports every client-side failure of tokio-postgres this way: a lost or
            // refused connection, but also a parameter or column that does not convert.
            DatabaseErrorKind::UnableToSendCommand => !client_bug(info.message()),
            _ => transient_server_message(info.message()),
        },
        // The connection broke inside a transaction: the pool discards it, another one works.
        Error::BrokenTransactionManager => true,
        Error::RollbackErrorOnCommit { commit_error, .. } => diesel_retryable(commit_error),
        _ => false,
    }
}

/// tokio-postgres' client-side errors that are bugs, not a connection's troubles (the text of
/// its `Display`, which diesel-async keeps as the message).
fn client_bug(message: &str) -> bool {
    [
        "error serializing parameter",
        "error deserializing column",
        "invalid column",
        "query returned an unexpected number",
        "expected ",
        "invalid connection string",
        "invalid configuration",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix))
}

/// Server errors of a database going away or not yet back, whose SQLSTATE diesel does not
/// expose: 57P01–57P03 (shutdown, starting up, recovery), 53300 (too many connections) and the
/// deadlock (40P01, also mapped to [`StorageError::Retryable`]), by their stable primary message.
fn transient_server_message(message: &str) -> bool {
    [
        "terminating connection due to administrator command",
        "terminating connection due to unexpected postmaster exit",
        "the database system is",
        "sorry, too many clients already",
        "remaining connection slots are reserved",
        "deadlock detected",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix))
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

#[cfg(test)]
mod tests {
    use diesel::result::Error;

    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn lost_connections_and_restarts_are_retryable_bugs_are_not() {
        let retryable = [
            db(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            db(DatabaseErrorKind::UnableToSendCommand, "error communicating with the server: broken pipe"),
            db(DatabaseErrorKind::ClosedConnection, "server closed the connection"),
            db(DatabaseErrorKind::SerializationFailure, "could not serialize access"),
            db(DatabaseErrorKind::Unknown, "terminating connection due to administrator command"),
            db(DatabaseErrorKind::Unknown, "the database system is starting up"),
            Error::BrokenTransactionManager,
            Error::RollbackErrorOnCommit {
                rollback_error: Box::new(db(DatabaseErrorKind::UnableToSendCommand, "connection closed")),
                commit_error: Box::new(db(DatabaseErrorKind::UnableToSendCommand, "connection closed")),
            },
        ];
        for e in retryable {
            let message = e.to_string();
            assert!(StorageError::from(e).is_retryable(), "{message}");
        }
        let permanent = [
            db(DatabaseErrorKind::UnableToSendCommand, "error serializing parameter 3: out of range"),
            db(DatabaseErrorKind::Unknown, "division by zero"),
            db(DatabaseErrorKind::NotNullViolation, "null value in column"),
            Error::NotFound,
        ];
        for e in permanent {
            let message = e.to_string();
            assert!(!StorageError::from(e).is_retryable(), "{message}");
        }
        let refused = diesel::ConnectionError::CouldntSetupConfiguration(db(
            DatabaseErrorKind::UnableToSendCommand,
            "error connecting to server: Connection refused",
        ));
        assert!(StorageError::Connection(refused).is_retryable());
        assert!(!StorageError::Connection(diesel::ConnectionError::InvalidConnectionUrl("x".into())).is_retryable());
    }

    #[test]
    fn errors_are_classified_in_whichever_form_they_were_passed_on() {
        use diesel_async::pooled_connection::PoolError as ManagerError;
        use diesel_async::pooled_connection::deadpool::PoolError;

        let timeout = PoolError::Timeout(deadpool::managed::TimeoutType::Wait);
        assert_eq!(StorageError::classify_retryable(&timeout), Some(true));
        let refused = PoolError::Backend(ManagerError::ConnectionError(diesel::ConnectionError::BadConnection(
            "connection refused".into(),
        )));
        assert_eq!(StorageError::classify_retryable(&refused), Some(true));
        assert_eq!(StorageError::classify_retryable(&PoolError::Closed), Some(false));
        let lost = db(DatabaseErrorKind::UnableToSendCommand, "connection closed");
        assert_eq!(StorageError::classify_retryable(&lost), Some(true));
        let corrupt = StorageError::corrupt("bad rule document");
        assert_eq!(StorageError::classify_retryable(&corrupt), Some(false));
        let other = std::io::Error::other("not the database's");
        assert_eq!(StorageError::classify_retryable(&other), None);
    }
}
