//! easgate's admin operations: creating CAs, users, templates and devices, issuing and revoking
//! certificates. The CLI calls them on the store directly; the REST API will call the same
//! functions, so validation and audit behave identically on both paths.
//!
//! Every operation validates its whole input before the first write, and every write is one
//! store transaction: bad input changes nothing.

pub mod access;
pub mod audit;
pub mod ca;
pub mod certs;
pub mod context;
pub mod crl;
pub mod devices;
pub mod directory;
pub mod doctor;
pub mod eas_policies;
pub mod eas_wipes;
mod error;
pub mod master_key;
pub mod names;
pub mod ndes;
pub mod profiles;
pub mod renewals;
pub mod scep;
pub mod service_keys;
pub mod templates;
pub mod time_fmt;
pub mod tokens;
pub mod trust;

pub use context::{Easgate, OpenOptions};
pub use error::{OpsError, Result};
