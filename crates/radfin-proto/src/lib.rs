//! radfin's protocol: the prost/tonic code generated from the `.proto` files under `proto/` at
//! the workspace root, the file descriptor set for gRPC reflection, and the conversions between
//! the generated messages and the domain types of `radfin-domain` ([`convert`]).
//!
//! Modules mirror the protobuf packages below `radfin`: package `radfin.pricing.v1` is
//! [`pricing::v1`]. Generated types stay in these modules; services convert to domain types
//! once, at the edge, and work with those.

pub mod convert;

pub use convert::{ConvertError, report_from_proto, to_status};

/// Types shared by every service: enumerations and money (`radfin.common.v1`).
pub mod common {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_docs)]
        tonic::include_proto!("radfin.common.v1");
    }
}

/// What ingest accepts and its service (`radfin.ingest.v1`).
pub mod ingest {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_docs)]
        tonic::include_proto!("radfin.ingest.v1");
    }
}

/// What pricing produces and manages (`radfin.pricing.v1`).
pub mod pricing {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_docs)]
        tonic::include_proto!("radfin.pricing.v1");
    }
}

/// The ledger's read API (`radfin.ledger.v1`).
pub mod ledger {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_docs)]
        tonic::include_proto!("radfin.ledger.v1");
    }
}

/// The margin summary, its queries and its stream of changes (`radfin.reporting.v1`).
pub mod reporting {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_docs)]
        tonic::include_proto!("radfin.reporting.v1");
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of every radfin `.proto` file (with source
/// info, so comments are included), for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/radfin_descriptor.bin"));
