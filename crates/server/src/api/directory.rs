//! `/api/v1` for users and groups.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use easgate_ops::tokens::Permission;
use easgate_store::{Group, User, UserChange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require, Api};
use super::paging::{page_args, page_in_memory, Page, PageQuery};
use super::pki::Removed;
use super::problem::{ApiResult, Body, Path, Query};
use crate::App;

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_users, add_user))
        .routes(routes!(show_user, update_user, remove_user))
        .routes(routes!(list_groups, add_group))
        .routes(routes!(remove_group))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Only members of this group.
    group: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    disabled: Option<bool>,
    /// Substring of the UPN, email or display name (case-insensitive).
    text: Option<String>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// List users.
#[utoipa::path(get, path = "/users", tag = "Users", params(UserListQuery),
    responses((status = 200, body = Page<User>)))]
async fn list_users(
    Api { app, caller }: Api,
    Query(q): Query<UserListQuery>,
) -> ApiResult<Json<Page<User>>> {
    require(&app, &caller, Permission::Read, "listing users").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let users = app
        .easgate
        .list_users()
        .await?
        .into_iter()
        .filter(|u| {
            q.group
                .as_ref()
                .is_none_or(|g| u.groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
                && q.disabled.is_none_or(|d| u.disabled == d)
                && q.text.as_ref().is_none_or(|t| {
                    contains(&u.upn, t)
                        || contains(&u.email, t)
                        || u.display_name.as_deref().is_some_and(|n| contains(n, t))
                })
        })
        .collect();
    Ok(Json(page_in_memory(users, args, |u| u.upn.to_lowercase())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// User principal name, e.g. `alice@corp.example`.
    upn: String,
    email: String,
    display_name: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// Add a user (admin).
#[utoipa::path(post, path = "/users", tag = "Users", request_body = NewUser,
    responses((status = 201, body = User)))]
async fn add_user(
    Api { app, caller }: Api,
    Body(req): Body<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    require(&app, &caller, Permission::Admin, "adding a user").await?;
    let user = app
        .easgate
        .add_user(
            &req.upn,
            &req.email,
            req.display_name.as_deref(),
            &req.groups,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Show a user.
#[utoipa::path(get, path = "/users/{upn}", tag = "Users", params(("upn" = String, Path)),
    responses((status = 200, body = User)))]
async fn show_user(Api { app, caller }: Api, Path(upn): Path<String>) -> ApiResult<Json<User>> {
    require(&app, &caller, Permission::Read, "reading a user").await?;
    Ok(Json(app.easgate.get_user(&upn).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    email: Option<String>,
    display_name: Option<String>,
    #[serde(default)]
    add_groups: Vec<String>,
    #[serde(default)]
    remove_groups: Vec<String>,
    /// Disable (`true`: the user's certificates are revoked and the gateway refuses the user)
    /// or enable (`false`).
    disabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UpdatedUser {
    pub user: User,
    /// Certificates revoked by disabling the user.
    pub revoked: Vec<String>,
}

/// Change a user (admin): email, name, groups, disabled.
#[utoipa::path(patch, path = "/users/{upn}", tag = "Users", params(("upn" = String, Path)),
    request_body = UserUpdate, responses((status = 200, body = UpdatedUser)))]
async fn update_user(
    Api { app, caller }: Api,
    Path(upn): Path<String>,
    Body(req): Body<UserUpdate>,
) -> ApiResult<Json<UpdatedUser>> {
    require(&app, &caller, Permission::Admin, "changing a user").await?;
    let e = &app.easgate;
    let mut user = e.get_user(&upn).await?;
    let changes_fields = req.email.is_some()
        || req.display_name.is_some()
        || !req.add_groups.is_empty()
        || !req.remove_groups.is_empty();
    if changes_fields {
        user = e
            .update_user(
                &upn,
                UserChange {
                    email: req.email,
                    display_name: req.display_name,
                    add_groups: req.add_groups,
                    remove_groups: req.remove_groups,
                },
            )
            .await?;
    }
    let mut revoked = Vec::new();
    match req.disabled {
        Some(true) if !user.disabled => {
            let (u, serials) = e.disable_user(&upn).await?;
            user = u;
            revoked = serials;
        }
        Some(false) if user.disabled => user = e.enable_user(&upn).await?,
        _ => {}
    }
    Ok(Json(UpdatedUser { user, revoked }))
}

/// Remove a user without devices (admin).
#[utoipa::path(delete, path = "/users/{upn}", tag = "Users", params(("upn" = String, Path)),
    responses((status = 200, body = Removed)))]
async fn remove_user(
    Api { app, caller }: Api,
    Path(upn): Path<String>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "removing a user").await?;
    app.easgate.remove_user(&upn).await?;
    Ok(Json(Removed::named("user", upn)))
}

/// List groups.
#[utoipa::path(get, path = "/groups", tag = "Users", params(PageQuery),
    responses((status = 200, body = Page<Group>)))]
async fn list_groups(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Group>>> {
    require(&app, &caller, Permission::Read, "listing groups").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let groups = app.easgate.list_groups().await?;
    Ok(Json(page_in_memory(groups, args, |g| g.name.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    name: String,
}

/// Add a group (admin).
#[utoipa::path(post, path = "/groups", tag = "Users", request_body = NewGroup,
    responses((status = 201, body = Group)))]
async fn add_group(
    Api { app, caller }: Api,
    Body(req): Body<NewGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    require(&app, &caller, Permission::Admin, "adding a group").await?;
    Ok((
        StatusCode::CREATED,
        Json(app.easgate.add_group(&req.name).await?),
    ))
}

/// Remove a group no rule or profile names (admin).
#[utoipa::path(delete, path = "/groups/{name}", tag = "Users", params(("name" = String, Path)),
    responses((status = 200, body = Removed)))]
async fn remove_group(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "removing a group").await?;
    app.easgate.remove_group(&name).await?;
    Ok(Json(Removed::named("group", name)))
}
