//! The dashboard: server-rendered pages (askama templates, checked at compile time), plain
//! HTML forms, no JavaScript framework. Each page calls the same engine use cases as the API,
//! so roles and tenant scope are enforced identically. Every form that changes something
//! carries the session's CSRF token; a missing or wrong one is refused before anything runs.

use crate::AppState;
use crate::auth::{ClientAddress, SESSION_COOKIE, clear_cookie, cookie, session_cookie};
use crate::extract::{parse_form, parse_query};
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{StatusCode, Uri, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ringfence_engine::EngineError;
use ringfence_engine::auth::{SessionInfo, constant_time_eq};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::Page;
use serde::Deserialize;

mod appliances;
mod deploy;
mod evidence;
mod intel;
mod overview;
mod remediation;
mod reports;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/search", get(overview::search))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/orgs", get(org_tree).post(create_org))
        .route("/orgs/{id}", get(org_page).post(update_org))
        .route("/orgs/{id}/delete", post(delete_org))
        .route("/sites", post(create_site))
        .route("/sites/{id}", get(site_page).post(update_site))
        .route("/sites/{id}/delete", post(delete_site))
        .route("/sites/{id}/enrollment-tokens", post(create_enrollment_token))
        .route("/enrollment-tokens/{id}/revoke", post(revoke_enrollment_token))
        .route("/groups", post(create_group))
        .route("/groups/{id}", post(update_group))
        .route("/groups/{id}/delete", post(delete_group))
        .route("/partner", post(rename_partner))
        .route("/devices", get(device_list).post(create_device))
        .route("/devices/{id}", get(device_page).post(update_device))
        .route("/devices/{id}/delete", post(delete_device))
        .route("/users", get(users_page).post(create_user))
        .route("/users/{id}", post(update_user))
        .route("/users/{id}/delete", post(delete_user))
        .route("/tokens", get(tokens_page).post(create_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/evidence", get(evidence::evidence))
        .route("/evidence/{seq}", get(evidence::event))
        .route("/reports", get(reports::reports).post(reports::generate))
        .route("/reports/{id}/{format}", get(reports::download))
        .route("/report-schedules", post(reports::schedule))
        .route("/report-schedules/{id}/delete", post(reports::unschedule))
        .route("/compliance", get(reports::compliance))
        .route("/appliances", get(appliances::appliances).post(appliances::add))
        .route("/appliances/firmware", get(appliances::firmware))
        .route("/appliances/import", post(appliances::import))
        .route("/appliances/{id}", get(appliances::appliance))
        .route("/appliances/{id}/confirm", post(appliances::confirm))
        .route("/snmp-credentials", post(appliances::add_credential))
        .route("/collectors", post(appliances::add_collector))
        .route("/network-scans", post(appliances::scan))
        .route("/appliance-mappings", post(appliances::map))
        .route("/appliance-tasks/{id}/done", post(appliances::task_done))
        .route("/compliance/export", get(reports::export))
        .route("/vulnerabilities", get(intel::vulnerabilities))
        .route("/vulnerabilities/{cve}", get(intel::vulnerability))
        .route("/software", get(intel::software))
        .route("/alerts", get(intel::alerts).post(intel::read_alerts))
        .route("/queue", get(remediation::queue))
        .route("/queue/decide", post(remediation::decide))
        .route("/queue/run-rules", post(remediation::run_rules))
        .route("/approvals", get(remediation::approvals))
        .route("/schedule", get(remediation::schedule))
        .route("/rollouts", get(deploy::rollouts))
        .route("/rollouts/rollback", post(deploy::rollback))
        .route("/rollouts/dispatch", post(deploy::dispatch))
        .route("/holds/{id}/clear", post(deploy::clear_hold))
        .route("/deployments", get(deploy::deployments))
        .route("/deployments/{id}", get(deploy::deployment))
        .route("/deployments/{id}/retry", post(deploy::retry))
        .route("/schedule/halts", post(remediation::halt))
        .route("/schedule/halts/{id}/release", post(remediation::release_halt))
        .route("/approvals/{id}/confirm", post(remediation::confirm))
        .route("/exceptions", get(remediation::exceptions).post(remediation::create_exception))
        .route("/exceptions/{id}/revoke", post(remediation::revoke_exception))
        .route("/risk-decisions", post(remediation::create_risk))
        .route("/risk-decisions/{id}/revoke", post(remediation::revoke_risk))
        .route("/policies", get(remediation::policies).post(remediation::submit_policy))
        .route("/policies/{id}/delete", post(remediation::delete_policy))
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../static/app.js"),
    )
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

/// A signed-in dashboard user, with what the frame shows them (the MSP's name, unread
/// alerts); anyone else is sent to the sign-in page.
struct Viewer(SessionInfo, Frame);

#[derive(Clone, Default)]
struct Frame {
    partner: String,
    unread_alerts: i64,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let next = form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
            Redirect::to(&format!("/login?next={next}")).into_response()
        };
        // A handler that takes both the viewer and a form finds the session once.
        if let Some(s) = parts.extensions.get::<SessionInfo>() {
            return Ok(Viewer(s.clone(), Frame::default()));
        }
        let Some(c) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(to_login()) };
        match state.engine.session(c).await {
            Ok(Some(s)) => {
                parts.extensions.insert(s.clone());
                // Only pages show the frame; a form post answers with a redirect.
                let frame = if parts.method == axum::http::Method::GET {
                    let e = &state.engine;
                    let partner =
                        e.partner(&s.principal).await.map(|p| p.name.to_string()).unwrap_or_default();
                    let unread_alerts = e.unread_alerts(&s.principal).await.unwrap_or(0);
                    Frame { partner, unread_alerts }
                } else {
                    Frame::default()
                };
                Ok(Viewer(s, frame))
            }
            Ok(None) => Err(to_login()),
            Err(e) => Err(page_error(e)),
        }
    }
}

/// A signed-in member of the MSP's staff. A client's own user (limited to one organization)
/// gets 403 on the MSP's internal pages: policies, approval rules and the queue's internals,
/// other clients, API tokens and the partner-wide alerts.
struct StaffViewer(Viewer);

impl FromRequestParts<AppState> for StaffViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let v = Viewer::from_request_parts(parts, state).await?;
        if v.0.principal.organization_id.is_some() {
            let uri = parts.uri.clone();
            return Err(viewer_error(
                &v,
                &uri,
                EngineError::Forbidden(
                    "this page is for your managed service provider's staff; your organization's figures are on your overview".into(),
                ),
            ));
        }
        Ok(StaffViewer(v))
    }
}

/// What every page shows in its frame.
struct Layout {
    title: String,
    section: &'static str,
    user: String,
    role: &'static str,
    csrf: String,
    can_write: bool,
    can_manage_users: bool,
    can_read_evidence: bool,
    partner_wide: bool,
    can_offboard: bool,
    is_user: bool,
    /// A client's own user (limited to one organization): the client portal's navigation.
    client: bool,
    partner: String,
    unread_alerts: i64,
    /// The search box's text on the search page.
    search: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct Flash {
    error: Option<String>,
    notice: Option<String>,
    sig: Option<String>,
}

fn layout(v: &Viewer, title: impl Into<String>, section: &'static str, uri: &Uri) -> Layout {
    let flash: Flash = parse_query(uri.query().unwrap_or("")).unwrap_or_default();
    let signed = |kind: &str, m: &String| flash.sig.as_deref() == Some(flash_sig(kind, m).as_str());
    let error = flash.error.clone().filter(|m| signed("error", m));
    let notice = flash.notice.clone().filter(|m| signed("notice", m));
    let p = &v.0.principal;
    Layout {
        title: title.into(),
        section,
        user: v.0.display_name.clone(),
        role: p.role.label(),
        csrf: v.0.csrf_token.clone(),
        can_write: p.allows(Permission::WriteTenancy),
        can_manage_users: p.allows(Permission::ManageUsers),
        can_read_evidence: p.allows(Permission::ReadEvidence),
        partner_wide: p.organization_id.is_none(),
        can_offboard: p.organization_id.is_none() && p.allows(Permission::ManagePartner),
        is_user: matches!(p.kind, PrincipalKind::User { .. }),
        client: p.organization_id.is_some(),
        partner: v.1.partner.clone(),
        unread_alerts: v.1.unread_alerts,
        search: String::new(),
        error: error.map(|e| e.chars().take(500).collect()),
        notice: notice.map(|e| e.chars().take(500).collect()),
    }
}

fn render(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

fn page_error(e: EngineError) -> Response {
    let (status, msg) = match &e {
        EngineError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
        EngineError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
        EngineError::Store(err) => {
            tracing::error!(error = %err, "store failure");
            (StatusCode::SERVICE_UNAVAILABLE, "the database could not complete the request; try again".into())
        }
        other => (StatusCode::BAD_REQUEST, other.to_string()),
    };
    (status, msg).into_response()
}

/// An error page inside the frame, for a signed-in viewer.
fn viewer_error(v: &Viewer, uri: &Uri, e: EngineError) -> Response {
    let status = match &e {
        EngineError::NotFound(_) => StatusCode::NOT_FOUND,
        EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
        EngineError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match &e {
        EngineError::Store(err) => {
            tracing::error!(error = %err, "store failure");
            "the database could not complete the request; try again".to_owned()
        }
        other => other.to_string(),
    };
    let heading = if status == StatusCode::NOT_FOUND { "Not found" } else { "Not possible" };
    let mut r = render(ErrorPage { layout: layout(v, heading, "", uri), heading: heading.into(), message });
    *r.status_mut() = status;
    r
}

/// Whether `s` is a path on this site that can go into a `Location` header as it is:
/// printable ASCII without spaces, starting with one `/`. Ids from a URL or a form can hold
/// anything once percent-decoded, so every redirect target passes through this.
fn local_path(s: &str) -> bool {
    s.starts_with('/') && !s.starts_with("//") && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
}

/// Where to go after a form: back to `to`, with the outcome shown there.
fn done(to: &str, outcome: Result<String, String>) -> Response {
    let to = if local_path(to) { to } else { "/" };
    let (key, msg) = match outcome {
        Ok(m) => ("notice", m),
        Err(m) => ("error", m),
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    let sig = flash_sig(key, &msg);
    let msg: String = form_urlencoded::byte_serialize(msg.as_bytes()).collect();
    Redirect::to(&format!("{to}{sep}{key}={msg}&sig={sig}")).into_response()
}

/// The key that signs this process's flash messages.
fn flash_key() -> &'static [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut k);
        k
    })
}

/// A form's outcome travels to the next page in its query string; it is shown only with the
/// signature this server made for it (HMAC-SHA256 with a key of this process), so a crafted
/// link cannot put words of its own on a ringfence page. (A redirect answered by another
/// server of the same installation shows no message.)
fn flash_sig(kind: &str, msg: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(flash_key());
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(kind)
        .chain_update([0])
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    hex::encode(&outer[..16])
}

/// A refused form submission.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// A submitted dashboard form, as one extractor: the viewer's session is found, the form's
/// CSRF token is checked against it before any field is looked at, and the fields are read
/// into `T` (a missing or mistyped field is 422 naming it). The second value holds the raw
/// fields, for the few forms that repeat a name (checkbox lists).
struct CsrfForm<T>(T, RawForm);

/// A form's fields as sent, in order.
struct RawForm(Bytes);

impl RawForm {
    /// Every value sent under `name` (a list of checkboxes).
    fn all(&self, name: &str) -> Vec<String> {
        form_urlencoded::parse(&self.0).filter(|(k, _)| k == name).map(|(_, v)| v.into_owned()).collect()
    }
}

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let req = axum::extract::Request::from_parts(parts, body);
        let body = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let sent = form_urlencoded::parse(&body).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
        if !sent.as_deref().is_some_and(|s| constant_time_eq(s, &viewer.0.csrf_token)) {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                "the form's security token is missing or out of date; reload the page and try again".into(),
            )
            .into_response());
        }
        let value = parse_form(&body).map_err(|e| Refused(e.status, e.body.message).into_response())?;
        Ok(CsrfForm(value, RawForm(body)))
    }
}

fn msg(e: EngineError) -> String {
    match e {
        EngineError::Store(err) => {
            tracing::error!(error = %err, "store failure");
            "the database could not complete the request; try again".into()
        }
        other => other.to_string(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    next: String,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// Only local paths are followed after sign-in, so a crafted link cannot send a user away.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if local_path(n) => n.to_owned(),
        _ => "/".to_owned(),
    }
}

async fn login_page(uri: Uri) -> Response {
    let q: LoginQuery = parse_query(uri.query().unwrap_or("")).unwrap_or(LoginQuery { next: None });
    render(LoginPage { error: None, next: safe_next(q.next.as_deref()) })
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Whether a request's `Origin` (when the browser sent one) is this server's own.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

async fn login_submit(
    State(s): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    // Sign-in has no session yet to carry a CSRF token; a browser's Origin header tells a
    // cross-site form post apart, which must not sign a visitor into someone else's account.
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "sign in from ringfence's own sign-in page").into_response();
    }
    let f: LoginForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => {
            let mut r = render(LoginPage { error: Some(e.body.message), next: "/".into() });
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return r;
        }
    };
    let next = safe_next(f.next.as_deref());
    match s.engine.login(&f.username, &f.password, &client).await {
        Ok(session) => (
            [(header::SET_COOKIE, session_cookie(&session.cookie, s.config.secure_cookies))],
            Redirect::to(&next),
        )
            .into_response(),
        Err(e) => {
            let status = match &e {
                EngineError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                EngineError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut r = render(LoginPage { error: Some(msg(e)), next });
            *r.status_mut() = status;
            r
        }
    }
}

async fn logout(
    State(s): State<AppState>,
    _: Viewer,
    headers: axum::http::HeaderMap,
    CsrfForm(_, _): CsrfForm<serde::de::IgnoredAny>,
) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = s.engine.logout(c).await
    {
        return page_error(e);
    }
    ([(header::SET_COOKIE, clear_cookie(s.config.secure_cookies))], Redirect::to("/login")).into_response()
}

struct OrgNode {
    org: Organization,
    sites: Vec<Site>,
    groups: Vec<DeviceGroup>,
    devices: i64,
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgTreePage {
    layout: Layout,
    partner: String,
    tree: Vec<OrgNode>,
}

async fn org_tree(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    let p = &v.0.principal;
    let e = &s.engine;
    let result: Result<OrgTreePage, EngineError> = async {
        let partner = e.partner(p).await?;
        let orgs = e.organizations(p).await?;
        let sites = e.sites(p, None).await?;
        let groups = e.groups(p, None).await?;
        let mut tree = Vec::new();
        for org in orgs {
            let q = proto::DeviceListQuery {
                organization_id: Some(org.id.to_string()),
                limit: Some(1),
                ..Default::default()
            };
            let devices = e.devices(p, &q).await?.total;
            tree.push(OrgNode {
                sites: sites.iter().filter(|x| x.organization_id == org.id).cloned().collect(),
                groups: groups.iter().filter(|x| x.organization_id == org.id).cloned().collect(),
                devices,
                org,
            });
        }
        Ok(OrgTreePage { layout: layout(&v, "Organizations", "orgs", &uri), partner: partner.name, tree })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(err) => viewer_error(&v, &uri, err),
    }
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage {
    layout: Layout,
    org: Organization,
    sites: Vec<Site>,
    groups: Vec<DeviceGroup>,
}

async fn org_page(State(s): State<AppState>, v: Viewer, uri: Uri, Path(id): Path<String>) -> Response {
    let p = &v.0.principal;
    let result = async {
        let org = s.engine.organization(p, &id).await?;
        let sites = s.engine.sites(p, Some(org.id.as_str())).await?;
        let groups = s.engine.groups(p, Some(org.id.as_str())).await?;
        Ok::<_, EngineError>(OrgPage {
            layout: layout(&v, org.name.clone(), "orgs", &uri),
            org,
            sites,
            groups,
        })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
struct OrgForm {
    name: String,
    #[serde(default)]
    notes: String,
}

async fn create_org(State(s): State<AppState>, v: Viewer, CsrfForm(f, _): CsrfForm<OrgForm>) -> Response {
    match s
        .engine
        .create_organization(&v.0.principal, &proto::CreateOrganization { name: f.name, notes: f.notes })
        .await
    {
        Ok(o) => done(&format!("/orgs/{}", o.id), Ok(format!("Organization '{}' created", o.name))),
        Err(e) => done("/orgs", Err(msg(e))),
    }
}

async fn update_org(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<OrgForm>,
) -> Response {
    let req = proto::UpdateOrganization { name: Some(f.name), notes: Some(f.notes) };
    let back = format!("/orgs/{id}");
    match s.engine.update_organization(&v.0.principal, &id, &req).await {
        Ok(_) => done(&back, Ok("Saved".into())),
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

async fn delete_org(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<ConfirmForm>,
) -> Response {
    let p = &v.0.principal;
    let back = format!("/orgs/{id}");
    let org = match s.engine.organization(p, &id).await {
        Ok(o) => o,
        Err(e) => return done("/orgs", Err(msg(e))),
    };
    if f.confirm.trim() != org.name {
        return done(&back, Err("type the organization's exact name to confirm the deletion".into()));
    }
    match s.engine.delete_organization(p, &id).await {
        Ok(()) => done("/orgs", Ok(format!("Organization '{}' deleted", org.name))),
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Template)]
#[template(path = "site.html")]
struct SitePage {
    layout: Layout,
    org: Organization,
    site: Site,
    devices: Page<Device>,
    roles: Vec<Opt>,
    criticalities: Vec<Opt>,
    enrollment: Vec<EnrollmentToken>,
    /// A just-created enrollment token's secret, shown in this response only.
    new_secret: Option<String>,
}

/// One choice of a `<select>`.
struct Opt {
    value: &'static str,
    selected: bool,
}

fn roles(selected: DeviceRole) -> Vec<Opt> {
    DeviceRole::ALL.iter().map(|r| Opt { value: r.as_str(), selected: *r == selected }).collect()
}

fn criticalities(selected: Criticality) -> Vec<Opt> {
    Criticality::ALL.iter().map(|c| Opt { value: c.as_str(), selected: *c == selected }).collect()
}

async fn site_page(State(s): State<AppState>, v: Viewer, uri: Uri, Path(id): Path<String>) -> Response {
    site_response(&s, &v, &uri, &id, None).await
}

async fn site_response(
    s: &AppState,
    v: &Viewer,
    uri: &Uri,
    id: &str,
    new_secret: Option<String>,
) -> Response {
    let (v, uri, id) = (v, uri, id.to_string());
    let p = &v.0.principal;
    let result = async {
        let site = s.engine.site(p, &id).await?;
        let org = s.engine.organization(p, site.organization_id.as_str()).await?;
        let q = proto::DeviceListQuery {
            site_id: Some(site.id.to_string()),
            limit: Some(100),
            ..Default::default()
        };
        let devices = s.engine.devices(p, &q).await?;
        let enrollment =
            s.engine.enrollment_tokens(p).await?.into_iter().filter(|t| t.site_id == site.id).collect();
        Ok::<_, EngineError>(SitePage {
            layout: layout(v, site.name.clone(), "orgs", uri),
            org,
            site,
            devices,
            enrollment,
            new_secret,
            roles: roles(DeviceRole::Workstation),
            criticalities: criticalities(Criticality::Medium),
        })
    }
    .await;
    match result {
        Ok(page) => {
            let mut r = render(page);
            r.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => viewer_error(v, uri, e),
    }
}

#[derive(Deserialize)]
struct EnrollmentForm {
    name: String,
    #[serde(default)]
    expires_in_hours: String,
    #[serde(default)]
    max_uses: String,
}

async fn create_enrollment_token(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<EnrollmentForm>,
) -> Response {
    let back = format!("/sites/{id}");
    let number = |field: &str, v: &str| -> Result<Option<i64>, String> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| format!("{field}: give a whole number"))
    };
    let (expires_in_hours, max_uses) =
        match (number("expires_in_hours", &f.expires_in_hours), number("max_uses", &f.max_uses)) {
            (Ok(e), Ok(m)) => (e, m),
            (Err(e), _) | (_, Err(e)) => return done(&back, Err(e)),
        };
    let req = proto::CreateEnrollmentToken { site_id: id.clone(), name: f.name, expires_in_hours, max_uses };
    match s.engine.create_enrollment_token(&v.0.principal, &req).await {
        // The secret is rendered into this response only; it is never stored or redirected.
        Ok(created) => site_response(&s, &v, &uri, &id, Some(created.secret)).await,
        Err(e) => done(&back, Err(msg(e))),
    }
}

async fn revoke_enrollment_token(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<serde::de::IgnoredAny>,
) -> Response {
    match s.engine.revoke_enrollment_token(&v.0.principal, &id).await {
        Ok(t) => done(&format!("/sites/{}", t.site_id), Ok(format!("Enrollment token '{}' revoked", t.name))),
        Err(e) => done("/orgs", Err(msg(e))),
    }
}

#[derive(Deserialize)]
struct SiteForm {
    organization_id: Option<String>,
    name: String,
    time_zone: String,
    #[serde(default)]
    address: String,
}

async fn create_site(State(s): State<AppState>, v: Viewer, CsrfForm(f, _): CsrfForm<SiteForm>) -> Response {
    let org = f.organization_id.unwrap_or_default();
    let back = format!("/orgs/{org}");
    let req =
        proto::CreateSite { organization_id: org, name: f.name, time_zone: f.time_zone, address: f.address };
    match s.engine.create_site(&v.0.principal, &req).await {
        Ok(site) => done(&back, Ok(format!("Site '{}' created", site.name))),
        Err(e) => done(&back, Err(msg(e))),
    }
}

async fn update_site(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<SiteForm>,
) -> Response {
    let back = format!("/sites/{id}");
    let req =
        proto::UpdateSite { name: Some(f.name), time_zone: Some(f.time_zone), address: Some(f.address) };
    match s.engine.update_site(&v.0.principal, &id, &req).await {
        Ok(_) => done(&back, Ok("Saved".into())),
        Err(e) => done(&back, Err(msg(e))),
    }
}

async fn delete_site(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<ConfirmForm>,
) -> Response {
    let p = &v.0.principal;
    let back = format!("/sites/{id}");
    let site = match s.engine.site(p, &id).await {
        Ok(x) => x,
        Err(e) => return done("/orgs", Err(msg(e))),
    };
    if f.confirm.trim() != site.name {
        return done(&back, Err("type the site's exact name to confirm the deletion".into()));
    }
    match s.engine.delete_site(p, &id).await {
        Ok(()) => {
            done(&format!("/orgs/{}", site.organization_id), Ok(format!("Site '{}' deleted", site.name)))
        }
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Deserialize)]
struct GroupForm {
    organization_id: String,
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_group(State(s): State<AppState>, v: Viewer, CsrfForm(f, _): CsrfForm<GroupForm>) -> Response {
    let back = format!("/orgs/{}", f.organization_id);
    let req = proto::CreateDeviceGroup {
        organization_id: f.organization_id,
        name: f.name,
        description: f.description,
    };
    match s.engine.create_group(&v.0.principal, &req).await {
        Ok(g) => done(&back, Ok(format!("Group '{}' created", g.name))),
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Deserialize)]
struct GroupEditForm {
    name: String,
    #[serde(default)]
    description: String,
}

async fn update_group(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<GroupEditForm>,
) -> Response {
    let p = &v.0.principal;
    let req = proto::UpdateDeviceGroup { name: Some(f.name), description: Some(f.description) };
    match s.engine.update_group(p, &id, &req).await {
        Ok(g) => done(&format!("/orgs/{}", g.organization_id), Ok(format!("Group '{}' saved", g.name))),
        Err(e) => done("/orgs", Err(msg(e))),
    }
}

#[derive(Deserialize)]
struct PartnerForm {
    name: String,
}

async fn rename_partner(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<PartnerForm>,
) -> Response {
    match s.engine.update_partner(&v.0.principal, &proto::UpdatePartner { name: f.name }).await {
        Ok(p) => done("/orgs", Ok(format!("Renamed to '{}'", p.name))),
        Err(e) => done("/orgs", Err(msg(e))),
    }
}

async fn delete_group(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<serde::de::IgnoredAny>,
) -> Response {
    let p = &v.0.principal;
    let group = match s.engine.group(p, &id).await {
        Ok(g) => g,
        Err(e) => return done("/orgs", Err(msg(e))),
    };
    let back = format!("/orgs/{}", group.organization_id);
    match s.engine.delete_group(p, &id).await {
        Ok(()) => done(&back, Ok(format!("Group '{}' deleted", group.name))),
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    layout: Layout,
    rows: Vec<ringfence_store::DeviceRow>,
    orgs: Vec<Organization>,
    list: crate::list::ListState,
    now: Timestamp,
    /// An agent seen since then is online.
    online_since: Timestamp,
}

impl DevicesPage {
    /// "online", "offline" or "no agent", and when it was last seen.
    fn presence(&self, d: &ringfence_store::DeviceRow) -> (&'static str, String) {
        let Some(seen) = d.last_seen else {
            return if d.has_agent {
                ("offline", "never checked in".into())
            } else {
                ("no agent", String::new())
            };
        };
        let ago = self.now.duration_since(seen);
        let when = if ago.as_mins() < 60 {
            format!("{} min ago", ago.as_mins().max(0))
        } else if ago.as_hours() < 48 {
            format!("{} h ago", ago.as_hours())
        } else {
            seen.strftime("%Y-%m-%d").to_string()
        };
        if seen >= self.online_since { ("online", when) } else { ("offline", when) }
    }
}

/// Devices a page of the device list holds.
const PAGE_SIZE: i64 = 25;

const DEVICE_COLUMNS: [&str; 7] = ["hostname", "client", "site", "os", "last_seen", "open", "kev"];

/// Devices: client, site, online or not, open findings; filtered, sorted and paged in the
/// database, with the view's CSV.
async fn device_list(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let mut list = match crate::list::ListState::read(
        "/devices",
        uri.query().unwrap_or(""),
        &DEVICE_COLUMNS,
        "hostname",
        false,
    ) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    list.per_page = PAGE_SIZE;
    let opt = |k: &str| Some(list.filter(k).to_owned()).filter(|x| !x.is_empty());
    let p = &v.0.principal;
    let query = proto::DeviceListQuery {
        organization_id: opt("organization_id"),
        site_id: opt("site_id"),
        group_id: opt("group_id"),
        search: opt("search"),
        limit: Some(if list.csv { 500 } else { PAGE_SIZE }),
        offset: Some(if list.csv { 0 } else { list.offset() }),
    };
    let presence = list.filter("presence").to_owned();
    let view = ringfence_engine::DeviceRowsView {
        query: &query,
        presence: &presence,
        sort: &list.sort,
        descending: list.desc,
    };
    let result = async {
        let mut rows = s.engine.device_rows(p, &view).await?;
        // The export is the whole view, read 500 at a time.
        if list.csv {
            while (rows.items.len() as i64) < rows.total {
                let q = proto::DeviceListQuery { offset: Some(rows.items.len() as i64), ..query.clone() };
                let more =
                    s.engine.device_rows(p, &ringfence_engine::DeviceRowsView { query: &q, ..view }).await?;
                if more.items.is_empty() {
                    break;
                }
                rows.items.extend(more.items);
            }
        }
        let orgs = s.engine.organizations(p).await?;
        Ok::<_, EngineError>((rows, orgs))
    }
    .await;
    let (rows, orgs) = match result {
        Ok(x) => x,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    list.total = rows.total;
    let page = DevicesPage {
        layout: layout(&v, "Devices", "devices", &uri),
        rows: rows.items,
        orgs,
        list,
        now: s.engine.now(),
        online_since: s.engine.now() - s.engine.offline_after(),
    };
    if page.list.csv {
        return crate::list::csv_response(
            "devices",
            &[
                "host name",
                "client",
                "site",
                "role",
                "os",
                "criticality",
                "presence",
                "last seen (UTC)",
                "open findings",
                "KEV findings",
            ],
            page.rows.iter().map(|d| {
                vec![
                    d.hostname.clone(),
                    d.organization.clone(),
                    d.site.clone(),
                    d.role.clone(),
                    d.os.clone(),
                    d.criticality.clone(),
                    page.presence(d).0.to_owned(),
                    d.last_seen.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
                    d.open_findings.to_string(),
                    d.kev_findings.to_string(),
                ]
            }),
        );
    }
    render(page)
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    layout: Layout,
    device: Device,
    org: Organization,
    site: Site,
    groups: Vec<DeviceGroup>,
    roles: Vec<Opt>,
    criticalities: Vec<Opt>,
    sections: intel::DeviceSections,
    remediation: remediation::DeviceRemediation,
    /// The device this one duplicates (its machine-id enrolled before).
    clone_of: Option<DeviceId>,
    agent: Option<ringfence_store::AgentState>,
    agent_seen: Option<String>,
}

async fn device_page(State(s): State<AppState>, v: Viewer, uri: Uri, Path(id): Path<String>) -> Response {
    let p = &v.0.principal;
    let result = async {
        let device = s.engine.device(p, &id).await?;
        let site = s.engine.site(p, device.site_id.as_str()).await?;
        let org = s.engine.organization(p, device.organization_id.as_str()).await?;
        let groups = s.engine.groups(p, Some(org.id.as_str())).await?;
        let sections = intel::device_sections(&s, p, &device.id, &uri).await?;
        let remediation = remediation::device_sections(&s, p, &device.id).await?;
        let agent = s.engine.agent_state(p, device.id.as_str()).await?;
        let now = s.engine.now();
        let agent_seen = agent.as_ref().map(|a| match a.last_seen {
            None => "never checked in".to_string(),
            Some(t) => {
                let ago = (now.as_second() - t.as_second()).max(0);
                let state = if a.online { "online" } else { "offline" };
                format!("{state}, last seen {} ({} min ago)", intel::short(&t), ago / 60)
            }
        });
        Ok::<_, EngineError>(DevicePage {
            sections,
            remediation,
            clone_of: agent.as_ref().and_then(|a| a.clone_of.clone()),
            agent,
            agent_seen,
            layout: layout(&v, device.hostname.clone(), "devices", &uri),
            roles: roles(device.role),
            criticalities: criticalities(device.criticality),
            device,
            org,
            site,
            groups,
        })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
struct DeviceForm {
    site_id: Option<String>,
    hostname: String,
    role: String,
    criticality: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    internet_facing: bool,
    #[serde(default)]
    holds_sensitive_data: bool,
    time_zone: Option<String>,
}

async fn create_device(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<DeviceForm>,
) -> Response {
    let site = f.site_id.unwrap_or_default();
    let back = format!("/sites/{site}");
    let req = proto::CreateDevice {
        site_id: site,
        hostname: f.hostname,
        role: f.role,
        os: f.os,
        internet_facing: f.internet_facing,
        holds_sensitive_data: f.holds_sensitive_data,
        criticality: Some(f.criticality),
        time_zone: f.time_zone.filter(|z| !z.trim().is_empty()),
        group_ids: Vec::new(),
    };
    match s.engine.create_device(&v.0.principal, &req).await {
        Ok(d) => done(&back, Ok(format!("Device '{}' added", d.hostname))),
        Err(e) => done(&back, Err(msg(e))),
    }
}

async fn update_device(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, raw): CsrfForm<DeviceForm>,
) -> Response {
    let back = format!("/devices/{id}");
    let req = proto::UpdateDevice {
        site_id: None,
        hostname: Some(f.hostname),
        role: Some(f.role),
        os: Some(f.os),
        internet_facing: Some(f.internet_facing),
        holds_sensitive_data: Some(f.holds_sensitive_data),
        criticality: Some(f.criticality),
        time_zone: Some(f.time_zone.filter(|z| !z.trim().is_empty())),
        // The edit form lists every group as a checkbox; the checked ones are the memberships.
        group_ids: Some(raw.all("group_ids")),
    };
    match s.engine.update_device(&v.0.principal, &id, &req).await {
        Ok(_) => done(&back, Ok("Saved".into())),
        Err(e) => done(&back, Err(msg(e))),
    }
}

async fn delete_device(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<serde::de::IgnoredAny>,
) -> Response {
    let p = &v.0.principal;
    let device = match s.engine.device(p, &id).await {
        Ok(d) => d,
        Err(e) => return done("/devices", Err(msg(e))),
    };
    match s.engine.delete_device(p, &id).await {
        Ok(()) => {
            done(&format!("/sites/{}", device.site_id), Ok(format!("Device '{}' deleted", device.hostname)))
        }
        Err(e) => done(&format!("/devices/{id}"), Err(msg(e))),
    }
}

struct UserRow {
    user: User,
    scope: String,
    is_me: bool,
    roles: Vec<Opt>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserRow>,
    orgs: Vec<Organization>,
    roles: Vec<&'static str>,
}

async fn users_page(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let p = &v.0.principal;
    let result = async {
        let users = s.engine.users(p).await?;
        let orgs = s.engine.organizations(p).await?;
        Ok::<_, EngineError>((users, orgs))
    }
    .await;
    let (users, orgs) = match result {
        Ok(x) => x,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let users = users
        .into_iter()
        .map(|u| {
            let scope = match &u.organization_id {
                Some(o) => orgs.iter().find(|x| &x.id == o).map_or_else(|| o.to_string(), |x| x.name.clone()),
                None => "all clients".into(),
            };
            let is_me = matches!(&p.kind, PrincipalKind::User { id, .. } if *id == u.id);
            let roles = Role::ALL
                .iter()
                .filter(|r| p.role.may_grant(**r))
                .map(|r| Opt { value: r.as_str(), selected: *r == u.role })
                .collect();
            UserRow { user: u, scope, is_me, roles }
        })
        .collect();
    let roles = Role::ALL.iter().filter(|r| p.role.may_grant(**r)).map(|r| r.as_str()).collect();
    render(UsersPage { layout: layout(&v, "Users", "users", &uri), users, orgs, roles })
}

#[derive(Deserialize)]
struct UserForm {
    username: String,
    #[serde(default)]
    display_name: String,
    role: String,
    organization_id: Option<String>,
    password: String,
}

async fn create_user(State(s): State<AppState>, v: Viewer, CsrfForm(f, _): CsrfForm<UserForm>) -> Response {
    let req = proto::CreateUser {
        username: f.username,
        display_name: f.display_name,
        role: f.role,
        organization_id: f.organization_id.filter(|o| !o.is_empty()),
        password: f.password,
    };
    match s.engine.create_user(&v.0.principal, &req).await {
        Ok(u) => done("/users", Ok(format!("User '{}' created", u.username))),
        Err(e) => done("/users", Err(msg(e))),
    }
}

#[derive(Deserialize)]
struct UserEditForm {
    role: String,
    disabled: bool,
}

async fn update_user(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<UserEditForm>,
) -> Response {
    let req = proto::UpdateUser { role: Some(f.role), disabled: Some(f.disabled), ..Default::default() };
    match s.engine.update_user(&v.0.principal, &id, &req).await {
        Ok(u) => done("/users", Ok(format!("User '{}' saved", u.username))),
        Err(e) => done("/users", Err(msg(e))),
    }
}

async fn delete_user(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<serde::de::IgnoredAny>,
) -> Response {
    match s.engine.delete_user(&v.0.principal, &id).await {
        Ok(()) => done("/users", Ok("User deleted".into())),
        Err(e) => done("/users", Err(msg(e))),
    }
}

struct TokenRow {
    id: String,
    name: String,
    role: Role,
    created: String,
    expires: String,
    last_used: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    roles: Vec<&'static str>,
    new_secret: Option<String>,
}

fn day(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".into(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
}

async fn tokens_response(s: &AppState, v: &Viewer, uri: &Uri, new_secret: Option<String>) -> Response {
    let p = &v.0.principal;
    let tokens = match s.engine.tokens(p).await {
        Ok(t) => t,
        Err(e) => return viewer_error(v, uri, e),
    };
    let tokens = tokens
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            name: t.name,
            role: t.role,
            created: day(Some(t.created_at)),
            expires: day(t.expires_at),
            last_used: day(t.last_used_at),
            revoked: t.revoked_at.is_some(),
        })
        .collect();
    let roles = Role::ALL.iter().filter(|r| p.role.may_grant(**r)).map(|r| r.as_str()).collect();
    render(TokensPage { layout: layout(v, "API tokens", "tokens", uri), tokens, roles, new_secret })
}

async fn tokens_page(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    tokens_response(&s, &v, &uri, None).await
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
    role: Option<String>,
    expires_in_days: Option<String>,
}

async fn create_token(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    CsrfForm(f, _): CsrfForm<TokenForm>,
) -> Response {
    let expires_in_days = match f.expires_in_days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match d.parse() {
            Ok(n) => Some(n),
            Err(_) => return done("/tokens", Err("expires_in_days: give a whole number of days".into())),
        },
    };
    let req = proto::CreateToken {
        name: f.name,
        role: f.role.filter(|r| !r.is_empty()),
        organization_id: None,
        expires_in_days,
    };
    match s.engine.create_token(&v.0.principal, &req).await {
        // The secret is rendered into this response only; it is never stored or redirected.
        Ok(created) => {
            let mut r = tokens_response(&s, &v, &uri, Some(created.secret)).await;
            r.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => done("/tokens", Err(msg(e))),
    }
}

async fn revoke_token(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<serde::de::IgnoredAny>,
) -> Response {
    match s.engine.revoke_token(&v.0.principal, &id).await {
        Ok(t) => done("/tokens", Ok(format!("Token '{}' revoked", t.name))),
        Err(e) => done("/tokens", Err(msg(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_local_paths_are_redirect_targets() {
        assert!(local_path("/orgs/01a2-b3?error=x%20y"));
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "/orgs/a\r\nSet-Cookie:x",
            "/é",
            "",
            "/a b",
        ] {
            assert!(!local_path(bad), "{bad:?}");
        }
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/devices?page=2")), "/devices?page=2");
        // A hostile id from a form still yields a valid redirect.
        let r = done("/orgs/x\r\ny", Err("no".into()));
        assert_eq!(
            r.headers()[header::LOCATION],
            format!("/?error=no&sig={}", flash_sig("error", "no")).as_str()
        );
    }
}
