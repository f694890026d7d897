//! Certificate-authority logic for easgate, free of I/O.
//!
//! Everything here takes bytes and the current time as arguments and returns values: the store,
//! the server and the binary own disks, sockets and clocks. That keeps the security-relevant
//! code testable on its own and lets the same issuance path serve the CLI, the REST API and SCEP.
//!
//! Building and signing certificates is delegated to `rcgen` (with aws-lc-rs); parsing and
//! signature verification of foreign input (CSRs, certificates) to `x509-parser`.

pub mod ca;
pub mod client_cert;
pub mod crl;
pub mod crl_check;
pub mod csr;
pub mod der_writing;
pub mod dn;
pub mod doctor;
mod error;
pub mod extensions;
pub mod input;
pub mod issue;
pub mod key;
pub mod ocsp;
pub mod ocsp_check;
pub mod pkcs12;
pub mod revocation;
pub mod sealed;
pub mod serial;
pub mod summary;
pub mod template;

pub use error::PkiError;
pub use key::{KeyType, PrivateKey};
pub use serial::Serial;
