//! Errors of the admin API as `application/problem+json` (RFC 9457), and the extractors that
//! turn malformed bodies, queries and paths into such problems instead of axum's plain-text
//! rejections. A problem names the field at fault where there is one; a server-side failure
//! is logged and answered without its details.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use easgate_ops::OpsError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem document (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` for plain HTTP status meanings).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault (a JSON path, a query parameter or a path segment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For 403: the role the operation needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
}

/// An API failure, answered as a [`Problem`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    field: Option<String>,
    required_role: Option<String>,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            field: None,
            required_role: None,
        }
    }

    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(required_role: &str, detail: impl Into<String>) -> Self {
        ApiError {
            required_role: Some(required_role.to_string()),
            ..ApiError::new(StatusCode::FORBIDDEN, detail)
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        let status = match &e {
            OpsError::Invalid(_) | OpsError::Pki(_) => StatusCode::BAD_REQUEST,
            OpsError::NotFound { .. } => StatusCode::NOT_FOUND,
            OpsError::AlreadyExists { .. } | OpsError::Conflict(_) => StatusCode::CONFLICT,
            OpsError::Gone(_) => StatusCode::GONE,
            // The database is down: say so (a retry later may work), not "internal error".
            OpsError::Store(store) if store.is_unavailable() => {
                tracing::warn!(error = %e, "admin API: the database is unreachable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => {
                tracing::error!(error = %e, "admin API: internal error");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the server log has the details",
                );
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank".into(),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            field: self.field,
            required_role: self.required_role,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"easgate\""),
            );
        }
        response
    }
}

/// Split serde's "path: message" (as axum reports a body's data error) into the field and the
/// message.
fn field_of(text: &str) -> (Option<String>, String) {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to deserialize query string: "))
        .unwrap_or(text);
    if let Some(field) = text.strip_prefix("unknown field `") {
        let name = field.split('`').next().unwrap_or_default();
        return (Some(name.to_string()), text.to_string());
    }
    if let Some(field) = text.strip_prefix("missing field `") {
        let name = field.split('`').next().unwrap_or_default();
        return (Some(name.to_string()), text.to_string());
    }
    match text.split_once(": ") {
        Some((path, message)) if !path.is_empty() && !path.contains(' ') && path != "." => {
            (Some(path.to_string()), message.to_string())
        }
        _ => (None, text.to_string()),
    }
}

/// A JSON request body; any rejection is a problem (400 with the field, 413, 415).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            let (field, message) = field_of(&text);
            ApiError {
                field: Some(field.unwrap_or_else(|| "body".into())),
                ..ApiError::new(StatusCode::BAD_REQUEST, message)
            }
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_field("body", text),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "request body too large (limit 1 MiB)")
        }
        _ => ApiError::new(status, text),
    }
}

/// Query parameters; any rejection is a 400 problem naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => {
                let text = match &rejection {
                    QueryRejection::FailedToDeserializeQueryString(e) => e.body_text(),
                    other => other.body_text(),
                };
                let (field, message) = field_of(&text);
                Err(ApiError {
                    field: Some(field.unwrap_or_else(|| "query".into())),
                    ..ApiError::new(StatusCode::BAD_REQUEST, message)
                })
            }
        }
    }
}

/// Path parameters; a rejection is a 400 problem.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                let text = match &rejection {
                    PathRejection::FailedToDeserializePathParams(e) => e.body_text(),
                    other => other.body_text(),
                };
                Err(ApiError::bad_field("path", text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn fields_of_serde_messages() {
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: platform: invalid type: integer `3`, expected a string at line 1 column 14").0.as_deref(),
            Some("platform")
        );
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `a`").0.as_deref(),
            Some("colour")
        );
        assert_eq!(field_of("expected value at line 1").0, None);
    }
}
