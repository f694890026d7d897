//! The admin REST API, `/api/v1` on the admin listener: every CLI operation over the same
//! `ops` functions, so the CLI and the API validate, audit and fail identically.
//!
//! The OpenAPI 3.1 document at `/api/openapi.json` is generated from the handlers' own
//! annotations and types (utoipa) and collected from the very router that serves them
//! (utoipa-axum), so a route cannot exist undocumented. Every operation needs a bearer token;
//! errors are `application/problem+json` (RFC 9457).

mod access;
mod audit;
pub mod auth;
pub mod call_log;
mod config;
mod dashboard;
mod devices;
mod directory;
mod paging;
mod pki;
pub mod problem;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as OpenApiDoc, RefOr, ResponseBuilder, SecurityRequirement,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use self::problem::{ApiError, Problem};
use crate::App;

/// The largest request body the API reads.
pub const BODY_LIMIT: usize = 1 << 20;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "easgate admin API",
        description = "Device trust for mobile email: CAs, users, devices, certificates, \
            profiles, EAS partnerships, access rules and the audit trail. Send \
            `Authorization: Bearer TOKEN` (easgate token create). Errors are \
            application/problem+json (RFC 9457)."
    ),
    components(schemas(Problem))
)]
struct ApiDoc;

/// `/api/v1/…` and `/api/openapi.json`.
pub fn router(app: Arc<App>) -> Router {
    let (api, doc) = OpenApiRouter::<Arc<App>>::with_openapi(ApiDoc::openapi())
        .merge(pki::routes())
        .merge(directory::routes())
        .merge(devices::routes())
        .merge(config::routes())
        .merge(access::routes())
        .merge(audit::routes())
        .merge(dashboard::routes())
        .split_for_parts();
    let doc = Arc::new(finish_document(doc));
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            auth::authenticate,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app);
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .nest("/api/v1", api)
}

async fn not_found() -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such API path (see /api/openapi.json)",
    )
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this path does not take that method (see /api/openapi.json)",
    )
}

/// Prefix the paths with `/api/v1`, require the bearer token everywhere, and document the
/// problem answers every operation can give.
fn finish_document(mut doc: OpenApiDoc) -> OpenApiDoc {
    let mut paths = utoipa::openapi::path::Paths::new();
    for (path, item) in std::mem::take(&mut doc.paths.paths) {
        paths.paths.insert(format!("/api/v1{path}"), item);
    }
    doc.paths = paths;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    let problem = || {
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            ))))
            .build()
    };
    let errors = [
        ("400", "bad input: the field at fault is named"),
        ("401", "no token, or an unknown, expired or revoked one"),
        ("403", "the token's role may not do this"),
        ("404", "no such thing"),
        ("409", "conflicts with what exists"),
        ("410", "gone (a used or expired one-time link)"),
        ("413", "request body too large"),
        ("405", "the path does not take this method"),
        ("415", "the body is not JSON"),
        ("500", "internal error (details in the server log)"),
    ];
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            for (code, description) in errors {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/problem+json", problem())
                                .build(),
                        )
                    });
            }
        }
    }
    doc
}
