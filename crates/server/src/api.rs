//! The REST API, version 1. Handlers are thin: extract the caller and the request, call the
//! engine, shape the response. Every route is listed in the OpenAPI document.

use crate::AppState;
use crate::auth::{Caller, ClientAddress, Via, clear_cookie, session_cookie};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ringfence_model::*;
use ringfence_proto::*;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json as J;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ringfence API",
        description = "Patch management and continuous vulnerability management for MSPs. Authenticate with 'Authorization: Bearer rft_…' (an API token) or a dashboard session plus its X-CSRF-Token header for changes.",
        version = "1"
    ),
    components(schemas(ErrorBody, Role, DeviceRole, Criticality)),
    tags(
        (name = "session", description = "Sign-in and the current caller"),
        (name = "tenancy", description = "Partner, organizations, sites, device groups and devices"),
        (name = "users", description = "Users and API tokens"),
        (name = "evidence", description = "The hash-chained evidence log"),
        (name = "inventory", description = "Device inventories, software history and the fleet's software"),
        (name = "vulnerabilities", description = "Findings, the fleet's vulnerabilities, alerts and feeds"),
        (name = "agents", description = "Enrollment tokens and agent enrollment"),
        (name = "policies", description = "Hierarchical configuration policies, effective policies and change previews"),
        (name = "remediation", description = "The update catalog, the remediation queue, approvals, exceptions and risk decisions"),
        (name = "schedule", description = "The schedule preview, maintenance windows and rollout halts"),
        (name = "deployments", description = "Rollouts ring by ring, deployments with the agent's log, rollbacks and package holds"),
        (name = "reports", description = "Client reports (HTML, CSV, PDF), report schedules and remediation deadlines"),
        (name = "appliances", description = "Agentless network appliances: SNMP polling through site collectors, discovery sweeps, identification, manual and CSV appliances, the fleet's firmware and appliance maintenance tasks"),
    )
)]
struct ApiDoc;

/// The API routes (with the standard body limit), the inventory routes (with their own,
/// larger one) and the OpenAPI document of both.
pub fn router() -> (axum::Router<AppState>, axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (inventory, inventory_doc) = crate::api_intel::inventory_router()
        .merge(crate::api_appliances::collector_router())
        .split_for_parts();
    let (routes, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::api_intel::router())
        .merge(crate::api_intel::agents_router())
        .merge(crate::api_remediation::router())
        .merge(crate::api_deploy::router())
        .merge(crate::api_reports::router())
        .merge(crate::api_appliances::router())
        .routes(routes!(login, logout))
        .routes(routes!(me))
        .routes(routes!(get_partner, update_partner))
        .routes(routes!(list_organizations, create_organization))
        .routes(routes!(get_organization, update_organization, delete_organization))
        .routes(routes!(list_sites, create_site))
        .routes(routes!(get_site, update_site, delete_site))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(list_devices, create_device))
        .routes(routes!(get_device, update_device, delete_device))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_events))
        .routes(routes!(verify_chain))
        .split_for_parts();
    doc.merge(inventory_doc);
    (routes, inventory, doc)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct SessionOpened {
    /// Echo this in the X-CSRF-Token header of every changing request made with the cookie.
    csrf_token: String,
    me: Me,
}

fn me_of(p: &Principal) -> Me {
    Me {
        actor: p.actor(),
        role: p.role.as_str().into(),
        partner_id: p.partner_id.to_string(),
        organization_id: p.organization_id.as_ref().map(ToString::to_string),
    }
}

/// Sign in with a username and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = SessionOpened), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(s): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let session = s.engine.login(&req.username, &req.password, &client).await?;
    let body = SessionOpened { csrf_token: session.csrf_token.clone(), me: me_of(&session.principal) };
    Ok(([(header::SET_COOKIE, session_cookie(&session.cookie, s.config.secure_cookies))], J(body))
        .into_response())
}

/// Sign out: ends the session of the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(s): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    if let (Via::Session { .. }, Some(cookie)) =
        (&caller.via, crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE))
    {
        s.engine.logout(cookie).await?;
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear_cookie(s.config.secure_cookies))])
        .into_response())
}

/// The caller: actor, role and scope.
#[utoipa::path(get, path = "/api/v1/me", tag = "session", responses((status = 200, body = Me)))]
async fn me(caller: Caller) -> J<Me> {
    J(me_of(&caller.principal))
}

#[utoipa::path(get, path = "/api/v1/partner", tag = "tenancy", responses((status = 200, body = Partner)))]
async fn get_partner(State(s): State<AppState>, c: Caller) -> ApiResult<J<Partner>> {
    Ok(J(s.engine.partner(&c.principal).await?))
}

#[utoipa::path(patch, path = "/api/v1/partner", tag = "tenancy", request_body = UpdatePartner,
    responses((status = 200, body = Partner), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_partner(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<UpdatePartner>,
) -> ApiResult<J<Partner>> {
    Ok(J(s.engine.update_partner(&c.principal, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/organizations", tag = "tenancy", responses((status = 200, body = Vec<Organization>)))]
async fn list_organizations(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<Organization>>> {
    Ok(J(s.engine.organizations(&c.principal).await?))
}

#[utoipa::path(post, path = "/api/v1/organizations", tag = "tenancy", request_body = CreateOrganization,
    responses((status = 201, body = Organization), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_organization(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateOrganization>,
) -> ApiResult<(StatusCode, J<Organization>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_organization(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 200, body = Organization), (status = 404, body = ErrorBody)))]
async fn get_organization(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<Organization>> {
    Ok(J(s.engine.organization(&c.principal, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/organizations/{id}", tag = "tenancy", params(("id" = String, Path)),
    request_body = UpdateOrganization, responses((status = 200, body = Organization), (status = 404, body = ErrorBody)))]
async fn update_organization(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<UpdateOrganization>,
) -> ApiResult<J<Organization>> {
    Ok(J(s.engine.update_organization(&c.principal, &id, &req).await?))
}

/// Deletes the organization with its sites, groups, devices and client users.
#[utoipa::path(delete, path = "/api/v1/organizations/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_organization(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_organization(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/sites", tag = "tenancy", params(OrganizationFilter),
    responses((status = 200, body = Vec<Site>)))]
async fn list_sites(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<OrganizationFilter>,
) -> ApiResult<J<Vec<Site>>> {
    Ok(J(s.engine.sites(&c.principal, q.organization_id.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/sites", tag = "tenancy", request_body = CreateSite,
    responses((status = 201, body = Site), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_site(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateSite>,
) -> ApiResult<(StatusCode, J<Site>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_site(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 200, body = Site), (status = 404, body = ErrorBody)))]
async fn get_site(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult<J<Site>> {
    Ok(J(s.engine.site(&c.principal, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/sites/{id}", tag = "tenancy", params(("id" = String, Path)),
    request_body = UpdateSite, responses((status = 200, body = Site), (status = 404, body = ErrorBody)))]
async fn update_site(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<UpdateSite>,
) -> ApiResult<J<Site>> {
    Ok(J(s.engine.update_site(&c.principal, &id, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/sites/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_site(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.engine.delete_site(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/device-groups", tag = "tenancy", params(OrganizationFilter),
    responses((status = 200, body = Vec<DeviceGroup>)))]
async fn list_groups(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<OrganizationFilter>,
) -> ApiResult<J<Vec<DeviceGroup>>> {
    Ok(J(s.engine.groups(&c.principal, q.organization_id.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/device-groups", tag = "tenancy", request_body = CreateDeviceGroup,
    responses((status = 201, body = DeviceGroup), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_group(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateDeviceGroup>,
) -> ApiResult<(StatusCode, J<DeviceGroup>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_group(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/device-groups/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 200, body = DeviceGroup), (status = 404, body = ErrorBody)))]
async fn get_group(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<DeviceGroup>> {
    Ok(J(s.engine.group(&c.principal, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/device-groups/{id}", tag = "tenancy", params(("id" = String, Path)),
    request_body = UpdateDeviceGroup, responses((status = 200, body = DeviceGroup), (status = 404, body = ErrorBody)))]
async fn update_group(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<UpdateDeviceGroup>,
) -> ApiResult<J<DeviceGroup>> {
    Ok(J(s.engine.update_group(&c.principal, &id, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/device-groups/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_group(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.engine.delete_group(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Devices in scope, filtered and paged (ordered by host name).
#[utoipa::path(get, path = "/api/v1/devices", tag = "tenancy", params(DeviceListQuery),
    responses((status = 200, body = DevicePage), (status = 400, body = ErrorBody)))]
async fn list_devices(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<DeviceListQuery>,
) -> ApiResult<J<DevicePage>> {
    let page = s.engine.devices(&c.principal, &q).await?;
    Ok(J(DevicePage { items: page.items, total: page.total, limit: page.limit, offset: page.offset }))
}

#[utoipa::path(post, path = "/api/v1/devices", tag = "tenancy", request_body = CreateDevice,
    responses((status = 201, body = Device), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_device(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateDevice>,
) -> ApiResult<(StatusCode, J<Device>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_device(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn get_device(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult<J<Device>> {
    Ok(J(s.engine.device(&c.principal, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "tenancy", params(("id" = String, Path)),
    request_body = UpdateDevice, responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
async fn update_device(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<UpdateDevice>,
) -> ApiResult<J<Device>> {
    Ok(J(s.engine.update_device(&c.principal, &id, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_device(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_device(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Vec<User>)))]
async fn list_users(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<User>>> {
    Ok(J(s.engine.users(&c.principal).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateUser>,
) -> ApiResult<(StatusCode, J<User>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_user(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn get_user(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult<J<User>> {
    Ok(J(s.engine.user(&c.principal, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = UpdateUser, responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<UpdateUser>,
) -> ApiResult<J<User>> {
    Ok(J(s.engine.update_user(&c.principal, &id, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_user(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.engine.delete_user(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "users", responses((status = 200, body = Vec<ApiToken>)))]
async fn list_tokens(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<ApiToken>>> {
    Ok(J(s.engine.tokens(&c.principal).await?))
}

/// Creates an API token for the signed-in user. The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "users", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateToken>,
) -> ApiResult<(StatusCode, J<CreatedToken>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_token(&c.principal, &req).await?)))
}

/// Revokes a token at once; requests that present it afterwards are refused.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<ApiToken>> {
    Ok(J(s.engine.revoke_token(&c.principal, &id).await?))
}

/// Evidence events of the caller's partner (or organization), in chain order.
#[utoipa::path(get, path = "/api/v1/evidence/events", tag = "evidence", params(EventQuery),
    responses((status = 200, body = Vec<EvidenceEvent>), (status = 403, body = ErrorBody)))]
async fn list_events(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<EventQuery>,
) -> ApiResult<J<Vec<EvidenceEvent>>> {
    Ok(J(s.engine.events(&c.principal, &q).await?))
}

/// Recomputes the caller's partner's hash chain from the database.
#[utoipa::path(get, path = "/api/v1/evidence/verify", tag = "evidence",
    responses((status = 200, body = ChainVerification), (status = 403, body = ErrorBody)))]
async fn verify_chain(State(s): State<AppState>, c: Caller) -> ApiResult<J<ChainVerification>> {
    Ok(J(s.engine.verify_own_chain(&c.principal).await?))
}

/// Answers unknown API paths with the JSON error shape.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route; see /api/openapi.json")
}
