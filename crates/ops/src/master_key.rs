//! Where the master key comes from: `EASGATE_MASTER_KEY` (64 hex digits) or `DATA/master.key`
//! (mode 0600, created on first use when no CA exists yet).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use easgate_pki::sealed::MasterKey;

use crate::error::{OpsError, Result};

pub const FILE_NAME: &str = "master.key";
pub const ENV_VAR: &str = "EASGATE_MASTER_KEY";

/// Where the key was found.
pub enum Source {
    Environment,
    File,
    Created,
}

/// Load the master key. `may_create`: no sealed secret exists yet, so a missing key file may be
/// created; otherwise a missing key is an error (a new key could not open the old secrets).
pub fn load(
    data_dir: &Path,
    env_value: Option<String>,
    may_create: bool,
) -> Result<(MasterKey, Source)> {
    if let Some(text) = env_value.filter(|v| !v.trim().is_empty()) {
        let key = MasterKey::from_text(&text)
            .map_err(|e| OpsError::MasterKey(format!("{ENV_VAR} is not usable: {e}")))?;
        return Ok((key, Source::Environment));
    }
    let path = data_dir.join(FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mode = fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o077)
                .unwrap_or(0);
            if mode != 0 {
                return Err(OpsError::MasterKey(format!(
                    "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                    path.display(),
                    mode,
                    path.display()
                )));
            }
            let key = MasterKey::from_text(&text).map_err(|e| {
                OpsError::MasterKey(format!("{} is not usable: {e}", path.display()))
            })?;
            Ok((key, Source::File))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !may_create {
                return Err(OpsError::MasterKey(format!(
                    "{} is missing but the database holds encrypted CA keys; restore the file or set {ENV_VAR}",
                    path.display()
                )));
            }
            let key = MasterKey::generate()?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| OpsError::io("create", &path, e))?;
            file.write_all(format!("{}\n", key.to_text()).as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| OpsError::io("write", &path, e))?;
            Ok((key, Source::Created))
        }
        Err(e) => Err(OpsError::io("read", &path, e)),
    }
}
