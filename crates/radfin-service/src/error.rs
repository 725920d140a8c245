//! The one mapping from the crates' errors to gRPC: each error type says its [`Code`] and
//! whether a retry of the same request may succeed ([`GrpcError`]); [`to_status`] makes the
//! status and logs what the client is not told. A client reads why its request was refused
//! (an invalid argument, a missing invoice, a closed month) but never a database's or a broker's
//! own words: those stay in the service's log.

use tonic::{Code, Status};

/// An error a gRPC method can end with.
pub trait GrpcError: std::fmt::Display {
    /// The status code the client receives.
    fn code(&self) -> Code;

    /// Whether the same request may succeed if sent again later (the database or the broker was
    /// briefly away, a transaction lost a race). By default, as the code says.
    fn is_retryable(&self) -> bool {
        is_retryable(self.code())
    }

    /// What the client is told. By default the error's own text for the caller's mistakes
    /// (invalid argument, not found, failed precondition, …) and a fixed sentence for the
    /// service's own failures, whose details are logged instead.
    fn client_message(&self) -> String {
        match self.code() {
            Code::Internal | Code::Unknown | Code::DataLoss => {
                "internal error (details are in the service's log)".to_owned()
            }
            Code::Unavailable => "temporarily unavailable; retry".to_owned(),
            _ => self.to_string(),
        }
    }
}

/// The codes after which retrying the same request may succeed.
pub fn is_retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Aborted | Code::ResourceExhausted | Code::DeadlineExceeded)
}

/// `error` as the status its client receives, logged at the level its code deserves (the
/// service's failures as errors, transient ones as warnings).
pub fn to_status(error: &(impl GrpcError + ?Sized)) -> Status {
    let code = error.code();
    match code {
        Code::Internal | Code::Unknown | Code::DataLoss => tracing::error!(%error, ?code, "request failed"),
        _ if error.is_retryable() => tracing::warn!(%error, ?code, "request failed; the client may retry"),
        _ => tracing::debug!(%error, ?code, "request refused"),
    }
    Status::new(code, error.client_message())
}

impl GrpcError for radfin_db::StorageError {
    fn code(&self) -> Code {
        use radfin_db::StorageError as E;
        match self {
            _ if radfin_db::StorageError::is_retryable(self) => Code::Unavailable,
            E::Conflict { .. } | E::ConflictingRevisions { .. } => Code::AlreadyExists,
            E::OutOfRange(_) => Code::OutOfRange,
            _ => Code::Internal,
        }
    }

    fn is_retryable(&self) -> bool {
        radfin_db::StorageError::is_retryable(self)
    }

    fn client_message(&self) -> String {
        match GrpcError::code(self) {
            Code::Unavailable => "storage is temporarily unavailable; retry".to_owned(),
            Code::Internal => "storage failure (details are in the service's log)".to_owned(),
            _ => self.to_string(),
        }
    }
}

/// A bus error: the broker briefly away is UNAVAILABLE, a dead letter that is not there
/// NOT_FOUND, anything else the service's own failure (details in the log).
impl GrpcError for radfin_bus::BusError {
    fn code(&self) -> Code {
        match self {
            _ if radfin_bus::BusError::is_retryable(self) => Code::Unavailable,
            radfin_bus::BusError::DeadLetterNotFound { .. } => Code::NotFound,
            _ => Code::Internal,
        }
    }

    fn is_retryable(&self) -> bool {
        radfin_bus::BusError::is_retryable(self)
    }

    fn client_message(&self) -> String {
        match GrpcError::code(self) {
            Code::Unavailable => "the message bus is temporarily unavailable; retry".to_owned(),
            Code::Internal => "message bus failure (details are in the service's log)".to_owned(),
            _ => self.to_string(),
        }
    }
}

/// An error passed on with `anyhow` (a cache load, a background step): a storage error in its
/// chain decides; anything else is the service's own failure.
impl GrpcError for anyhow::Error {
    fn code(&self) -> Code {
        let retryable = self.chain().find_map(radfin_db::StorageError::classify_retryable);
        if retryable == Some(true) { Code::Unavailable } else { Code::Internal }
    }

    fn client_message(&self) -> String {
        match GrpcError::code(self) {
            Code::Unavailable => "storage is temporarily unavailable; retry".to_owned(),
            _ => "internal error (details are in the service's log)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_keep_their_details_in_the_log() {
        let busy = radfin_db::StorageError::Retryable { message: "could not serialize access (xid 4711)".into() };
        let status = to_status(&busy);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(GrpcError::is_retryable(&busy));
        assert!(!status.message().contains("xid"), "{}", status.message());

        let corrupt = radfin_db::StorageError::Corrupt("ledger_entries.side = 'X'".into());
        let status = to_status(&corrupt);
        assert_eq!(status.code(), Code::Internal);
        assert!(!GrpcError::is_retryable(&corrupt));
        assert!(!status.message().contains("ledger_entries"), "{}", status.message());

        let conflict = radfin_db::StorageError::Conflict {
            constraint: "reports_pkey".into(),
            message: "duplicate key value".into(),
        };
        assert_eq!(to_status(&conflict).code(), Code::AlreadyExists);
    }

    #[test]
    fn bus_errors_map_to_unavailable_not_found_or_internal() {
        let missing = radfin_bus::BusError::DeadLetterNotFound { seq: 7 };
        let status = to_status(&missing);
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains('7'), "{}", status.message());
        assert!(!GrpcError::is_retryable(&missing));

        let down = radfin_bus::BusError::Fetch {
            stream: "RADFIN_REPORTS".into(),
            consumer: "pricing".into(),
            source: "timed out".into(),
        };
        assert_eq!(to_status(&down).code(), Code::Unavailable);
        assert!(GrpcError::is_retryable(&down));

        let refused = radfin_bus::BusError::InvalidArgument {
            what: "dead letter",
            reason: "dead letter 7 has no Radfin-Original-Subject header".into(),
        };
        let status = to_status(&refused);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("Radfin-Original-Subject"), "{}", status.message());
    }

    #[test]
    fn an_anyhow_error_is_classified_by_the_storage_error_in_its_chain() {
        let busy = anyhow::Error::new(radfin_db::StorageError::Retryable { message: "deadlock detected".into() })
            .context("loading the reference data");
        assert_eq!(to_status(&busy).code(), Code::Unavailable);
        let bug = anyhow::anyhow!("rule version 7 has no tiers").context("loading the reference data");
        let status = to_status(&bug);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("tiers"), "{}", status.message());
    }

    #[test]
    fn retryable_codes() {
        for code in [Code::Unavailable, Code::Aborted, Code::ResourceExhausted, Code::DeadlineExceeded] {
            assert!(is_retryable(code), "{code:?}");
        }
        for code in [Code::InvalidArgument, Code::NotFound, Code::FailedPrecondition, Code::Internal] {
            assert!(!is_retryable(code), "{code:?}");
        }
    }
}
