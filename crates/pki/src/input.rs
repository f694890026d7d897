//! Reading PEM or DER input from files an administrator hands us.

use crate::PkiError;

/// Return the DER bytes of the first PEM block whose label is one of `labels`, or the input
/// itself when it is not PEM (DER is checked later by the parser that consumes it).
pub fn pem_or_der(bytes: &[u8], labels: &[&str], what: &'static str) -> Result<Vec<u8>, PkiError> {
    let trimmed = bytes.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        if trimmed.is_empty() {
            return Err(PkiError::Malformed {
                what,
                why: "the file is empty".into(),
            });
        }
        return Ok(bytes.to_vec());
    }
    let blocks = pem::parse_many(trimmed).map_err(|e| PkiError::Malformed {
        what,
        why: format!("bad PEM: {e}"),
    })?;
    let found: Vec<String> = blocks.iter().map(|b| b.tag().to_string()).collect();
    blocks
        .into_iter()
        .find(|b| labels.contains(&b.tag()))
        .map(|b| b.into_contents())
        .ok_or_else(|| PkiError::Malformed {
            what,
            why: if found.is_empty() {
                "no PEM block found".into()
            } else {
                format!(
                    "expected a PEM block labelled {}, found {}",
                    labels.join(" or "),
                    found.join(", ")
                )
            },
        })
}

/// PEM-encode DER with a label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_and_der_and_garbage() {
        let pem = to_pem("CERTIFICATE", &[1, 2, 3]);
        assert_eq!(
            pem_or_der(pem.as_bytes(), &["CERTIFICATE"], "certificate").unwrap(),
            vec![1, 2, 3]
        );
        assert!(pem_or_der(pem.as_bytes(), &["CERTIFICATE REQUEST"], "CSR").is_err());
        assert!(pem_or_der(
            b"-----BEGIN CERTIFICATE-----\n!!\n",
            &["CERTIFICATE"],
            "certificate"
        )
        .is_err());
        assert!(pem_or_der(b"", &["CERTIFICATE"], "certificate").is_err());
        assert_eq!(
            pem_or_der(&[0x30, 0x00], &["CERTIFICATE"], "certificate").unwrap(),
            vec![0x30, 0]
        );
    }
}
