//! Cursor paging of the API's lists. A cursor is the last key of a page, base64url-encoded
//! JSON: opaque to clients, and the store resumes after it with an index range scan, so a
//! page's cost does not depend on its depth. Short lists kept whole in memory (CAs, rules, …)
//! are paged by the same cursor over their sorted keys.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// One page of a list; pass `next_cursor` as `cursor` for the next one (absent on the last).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor` of a list request, checked.
pub struct PageArgs<K> {
    pub after: Option<K>,
    pub limit: u32,
}

pub fn page_args<K: DeserializeOwned>(
    limit: Option<u32>,
    cursor: Option<&str>,
) -> ApiResult<PageArgs<K>> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_field(
            "limit",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let after = cursor
        .map(|c| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<K>(&bytes).ok())
                .ok_or_else(|| {
                    ApiError::bad_field("cursor", "invalid cursor: pass a next_cursor unchanged")
                })
        })
        .transpose()?;
    Ok(PageArgs { after, limit })
}

fn encode<K: Serialize>(key: &K) -> Option<String> {
    use base64::Engine;
    serde_json::to_vec(key)
        .ok()
        .map(|bytes| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A page from a store query that returned at most `limit` records.
pub fn page_of<T, K: Serialize>(items: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Page<T> {
    let next_cursor = if items.len() == limit as usize {
        items.last().and_then(|last| encode(&key(last)))
    } else {
        None
    };
    Page { items, next_cursor }
}

/// A page of a short list held whole: sorted by `key`, the records after the cursor.
pub fn page_in_memory<T>(
    mut items: Vec<T>,
    args: PageArgs<String>,
    key: impl Fn(&T) -> String,
) -> Page<T> {
    items.sort_by_key(|item| key(item));
    let start = match &args.after {
        Some(after) => items.partition_point(|item| key(item) <= *after),
        None => 0,
    };
    let rest: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(args.limit as usize)
        .collect();
    page_of(rest, args.limit, key)
}

/// Paging parameters shared by list operations (documented per operation).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any cursor text is a clean 400 or a key, never a panic; a cursor made by a page
        /// reads back as its key.
        #[test]
        fn cursors_never_panic(text in ".{0,80}", key in ("[a-z@.]{0,20}", "[A-Z0-9]{0,12}", any::<bool>())) {
            let _ = page_args::<(String, String, bool)>(Some(10), Some(&text));
            let page = page_of(vec![key.clone()], 1, Clone::clone);
            let cursor = page.next_cursor.unwrap();
            let args = page_args::<(String, String, bool)>(None, Some(&cursor)).unwrap();
            prop_assert_eq!(args.after, Some(key));
        }
    }

    #[test]
    fn in_memory_pages_resume_after_the_cursor() {
        let names: Vec<String> = ["d", "a", "c", "b", "e"].map(String::from).to_vec();
        let first = page_in_memory(
            names.clone(),
            PageArgs {
                after: None,
                limit: 2,
            },
            Clone::clone,
        );
        assert_eq!(first.items, ["a", "b"]);
        let after = page_args::<String>(Some(2), first.next_cursor.as_deref()).unwrap();
        let second = page_in_memory(names, after, Clone::clone);
        assert_eq!(second.items, ["c", "d"]);
    }
}
