//! One cell as both sides hold it, and the canonical bytes the checksums are made of.
//!
//! Why values are typed by the column list rather than by what SQLite returns: SQLite keeps
//! any value in any column, and an integer column may hold text if something ever wrote it
//! so. Reading by the declared kind turns such a cell into a clear error instead of a
//! silently different row on PostgreSQL; the same goes for a boolean that is neither 0 nor 1,
//! text that is not UTF-8 and text with a NUL (which PostgreSQL cannot store).

use aws_lc_rs::digest;

use super::tables::Table;

/// A cell's value (`None` columns are SQL NULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
}

impl Value {
    /// About how many bytes the value takes in memory and on the wire.
    pub(crate) fn size(&self) -> usize {
        match self {
            Value::Text(v) => 8 + v.len(),
            Value::Blob(v) => 8 + v.len(),
            _ => 8,
        }
    }

    /// Append the value's canonical form: a tag, then a fixed-width or length-prefixed body, so
    /// no two different rows render the same.
    fn render(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(b'N'),
            Value::Int(v) => {
                out.push(b'I');
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::Bool(v) => {
                out.push(b'B');
                out.push(u8::from(*v));
            }
            Value::Text(v) => {
                out.push(b'T');
                out.extend_from_slice(&(v.len() as u64).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            Value::Blob(v) => {
                out.push(b'X');
                out.extend_from_slice(&(v.len() as u64).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
}

/// SHA-256 over a table's name, its column names and every row in key order.
pub(crate) struct Checksum {
    context: digest::Context,
    rows: u64,
    buffer: Vec<u8>,
}

impl Checksum {
    pub(crate) fn new(table: &Table) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        let mut header = Vec::new();
        Value::Text(table.name.to_string()).render(&mut header);
        for column in table.columns {
            Value::Text(column.name.to_string()).render(&mut header);
        }
        context.update(&header);
        Checksum {
            context,
            rows: 0,
            buffer: Vec::new(),
        }
    }

    pub(crate) fn add_row(&mut self, row: &[Value]) {
        self.buffer.clear();
        self.buffer.push(b'R');
        for value in row {
            value.render(&mut self.buffer);
        }
        self.context.update(&self.buffer);
        self.rows += 1;
    }

    /// Rows seen and the digest as lower-case hex.
    pub(crate) fn finish(self) -> (u64, String) {
        let digest = self.context.finish();
        let hex = digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        (self.rows, hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::tables::TABLES;

    fn sum(rows: &[Vec<Value>]) -> String {
        let mut c = Checksum::new(&TABLES[0]);
        for row in rows {
            c.add_row(row);
        }
        c.finish().1
    }

    #[test]
    fn renderings_do_not_run_into_each_other() {
        let a = sum(&[vec![Value::Text("ab".into()), Value::Text("c".into())]]);
        let b = sum(&[vec![Value::Text("a".into()), Value::Text("bc".into())]]);
        assert_ne!(a, b);
        let null = sum(&[vec![Value::Null]]);
        let empty = sum(&[vec![Value::Text(String::new())]]);
        assert_ne!(null, empty);
        assert_ne!(sum(&[vec![Value::Int(1)]]), sum(&[vec![Value::Bool(true)]]));
        assert_ne!(sum(&[]), sum(&[vec![]]));
    }

    #[test]
    fn the_same_rows_give_the_same_sum() {
        let rows = vec![vec![Value::Int(7), Value::Blob(vec![0, 1]), Value::Null]];
        assert_eq!(sum(&rows), sum(&rows.clone()));
        assert_eq!(sum(&rows).len(), 64);
    }
}
