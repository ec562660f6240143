//! `scaivault identity …` (partners, tenants, users, groups, members, roles: `/v1/identity`) and
//! `scaivault system health|ready|detailed|version`.
//!
//! Every command is one request; `--json` prints the server's answer (for the few that answer
//! `204 No Content`, a small object saying what was done), a table or `key: value` block otherwise.
//! User and group commands act in `--tenant`, else the configured tenant, else the token's own.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::config::Settings;
use super::http::{ApiClient, ApiError};
use super::output::{key_values, print_json, print_raw, value_cell, Table};
use super::GlobalOpts;

#[derive(Subcommand, Debug)]
pub enum IdentityCommand {
    /// Partners (super admins)
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// Tenants of a partner
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Users of a tenant
    #[command(subcommand)]
    Users(UsersCommand),
    /// Groups of a tenant
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Members of a group
    #[command(subcommand)]
    Members(MembersCommand),
    /// The admin roles and what each may administer
    Roles,
    /// A user's admin roles: `get USER`, or `set USER ROLE…` (no roles: remove them all)
    #[command(subcommand, name = "user-roles")]
    UserRoles(UserRolesCommand),
    /// Look up one identity by type (user, service_account, group) and id
    Resolve {
        /// user, service_account or group
        identity_type: String,
        /// user:<email>, sa:<name>, group:<name>
        identity_id: String,
    },
    /// Sync with the identity provider (this server is its own: completes at once, no changes)
    Sync {
        #[arg(long, value_name = "PARTNER_ID")]
        partner: Option<String>,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
}

#[derive(Args, Debug, Default)]
pub struct Paging {
    /// Page number (from 1)
    #[arg(long, value_name = "N")]
    pub page: Option<u32>,
    /// Items per page
    #[arg(long, value_name = "N")]
    pub page_size: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum PartnersCommand {
    /// List partners
    List {
        /// ACTIVE or SUSPENDED
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one partner
    Get { id: String },
    /// Create a partner
    Create {
        name: String,
        /// ptn_… (default: generated)
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        region: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// List tenants
    List {
        #[arg(long, value_name = "PARTNER_ID")]
        partner: Option<String>,
        /// ACTIVE or SUSPENDED
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one tenant
    Get { id: String },
    /// Create a tenant
    Create {
        name: String,
        /// tnt_… (default: generated)
        #[arg(long)]
        id: Option<String>,
        #[arg(long, value_name = "PARTNER_ID")]
        partner: Option<String>,
        #[arg(long)]
        slug: Option<String>,
        /// Per-minute rate limit of a category for the tenant's identities, e.g. read=5000 (0 lifts it;
        /// repeatable)
        #[arg(long = "rate-limit", value_name = "CATEGORY=N")]
        rate_limits: Vec<String>,
    },
    /// Rename, suspend or reactivate a tenant, or set its rate limits
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// ACTIVE or SUSPENDED
        #[arg(long)]
        status: Option<String>,
        /// Per-minute rate limit of a category, e.g. read=5000 (0 lifts it; repeatable; replaces the
        /// tenant's overrides)
        #[arg(
            long = "rate-limit",
            value_name = "CATEGORY=N",
            conflicts_with = "clear_rate_limits"
        )]
        rate_limits: Vec<String>,
        /// Remove the tenant's overrides (back to the server's limits)
        #[arg(long)]
        clear_rate_limits: bool,
    },
}

#[derive(Args, Debug)]
pub struct TenantArg {
    /// Tenant (default: the configured tenant, else the token's)
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List users
    List {
        #[command(flatten)]
        tenant: TenantArg,
        /// Search email and display name
        #[arg(long, value_name = "TEXT")]
        query: Option<String>,
        /// ACTIVE or DISABLED
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one user
    Get {
        /// user:<email> or the email
        user: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Create a user
    Create {
        email: String,
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        display_name: Option<String>,
        /// Scope (repeatable)
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Admin role (repeatable)
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Group, group:<name> (repeatable)
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Change a user's display name, scopes or status
    Update {
        user: String,
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        display_name: Option<String>,
        /// Scope (repeatable; replaces the user's scopes)
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// ACTIVE or DISABLED
        #[arg(long)]
        status: Option<String>,
    },
    /// Disable a user (their tokens stop working)
    Disable {
        user: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List groups
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        paging: Paging,
    },
    /// Create a group
    Create {
        name: String,
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Delete a group
    Delete {
        /// group:<name> or the name
        group: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// List a group's members
    List { group: String },
    /// Add a user to a group
    Add { group: String, user: String },
    /// Remove a user from a group
    Remove { group: String, user: String },
}

#[derive(Subcommand, Debug)]
pub enum UserRolesCommand {
    /// Show a user's admin roles
    Get { user: String },
    /// Replace a user's admin roles
    Set { user: String, roles: Vec<String> },
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Liveness (no token needed)
    Health,
    /// Readiness: database and encryption (no token needed; exit 1 when not ready)
    Ready,
    /// Per-component health with numbers
    Detailed,
    /// Server version, API version and storage backend
    Version,
}

/// How the answer is shown without `--json`.
enum Show {
    /// A list under `key`, with these (header, field) columns.
    Table(&'static str, &'static [(&'static str, &'static str)]),
    /// The object's top-level fields as `key: value` lines.
    Object,
    /// A line of text (`204` answers; `--json` then prints `done`).
    Done(String, Value),
}

const PARTNER_COLS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("SLUG", "slug"),
    ("REGION", "region"),
    ("STATUS", "status"),
];
const TENANT_COLS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("PARTNER", "partner_id"),
    ("NAME", "name"),
    ("SLUG", "slug"),
    ("STATUS", "status"),
];
const USER_COLS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("TYPE", "type"),
    ("DISPLAY NAME", "display_name"),
    ("STATUS", "status"),
    ("ROLES", "roles"),
    ("GROUPS", "groups"),
];
const GROUP_COLS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("DISPLAY NAME", "display_name"),
    ("MEMBERS", "member_count"),
];
const MEMBER_COLS: &[(&str, &str)] = &[
    ("USER", "user_id"),
    ("EMAIL", "email"),
    ("MEMBERSHIP", "membership_type"),
    ("ADDED", "added_at"),
];
const ROLE_COLS: &[(&str, &str)] = &[("ROLE", "name"), ("DESCRIPTION", "description")];

/// One request: method, path segments after `/v1`, query, body, and how to show the answer.
struct Request {
    method: Method,
    path: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    show: Show,
}

impl Request {
    fn new(method: Method, path: &[&str], show: Show) -> Self {
        Self {
            method,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            show,
        }
    }

    fn query(mut self, key: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.query.push((key, v.to_string()));
        }
        self
    }

    fn paging(self, p: &Paging) -> Self {
        self.query("page", p.page).query("page_size", p.page_size)
    }

    fn body(mut self, body: Map<String, Value>) -> Self {
        self.body = Some(Value::Object(body));
        self
    }
}

/// A JSON object of the fields that are set (`None` and empty lists left out).
fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// `{"read": 5000, …}` from `read=5000` arguments (`null` for none). The server checks categories and
/// ranges; a value that is not a number goes as given, so its answer names the problem.
fn rate_limit_object(pairs: &[String]) -> Result<Value, ApiError> {
    if pairs.is_empty() {
        return Ok(Value::Null);
    }
    let mut m = Map::new();
    for p in pairs {
        let (k, v) = p.split_once('=').ok_or_else(|| {
            ApiError::validation(
                "invalid_argument",
                format!("--rate-limit {p:?}: expected CATEGORY=N, e.g. read=5000"),
            )
        })?;
        let v = v
            .trim()
            .parse::<u64>()
            .map_or_else(|_| json!(v.trim()), |n| json!(n));
        m.insert(k.trim().to_owned(), v);
    }
    Ok(Value::Object(m))
}

/// `user:<email>` from an email or an id.
fn user_id(user: &str) -> String {
    if user.contains(':') {
        user.to_owned()
    } else {
        format!("user:{user}")
    }
}

fn group_id(group: &str) -> String {
    if group.starts_with("group:") {
        group.to_owned()
    } else {
        format!("group:{group}")
    }
}

async fn tenant_of(c: &ApiClient, s: &Settings, arg: TenantArg) -> Result<String, ApiError> {
    if let Some(t) = arg.tenant.or_else(|| s.tenant_id.value.clone()) {
        return Ok(t);
    }
    let who = c.get(c.url(&["v1", "auth", "whoami"], &[])?).await?;
    who.body["tenant_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::validation("invalid_argument", "no tenant: pass --tenant"))
}

async fn identity_request(
    cmd: IdentityCommand,
    c: &ApiClient,
    s: &Settings,
) -> Result<Request, ApiError> {
    use IdentityCommand as I;
    // Every path here is under /v1/identity.
    let req = |method: Method, parts: &[&str], show: Show| {
        let mut path = vec!["identity"];
        path.extend_from_slice(parts);
        Request::new(method, &path, show)
    };
    Ok(match cmd {
        I::Partners(PartnersCommand::List { status, paging }) => req(
            Method::GET,
            &["partners"],
            Show::Table("partners", PARTNER_COLS),
        )
        .query("status", status)
        .paging(&paging),
        I::Partners(PartnersCommand::Get { id }) => {
            req(Method::GET, &["partners", &id], Show::Object)
        }
        I::Partners(PartnersCommand::Create {
            name,
            id,
            slug,
            region,
        }) => req(Method::POST, &["partners"], Show::Object).body(fields(&[
            ("name", json!(name)),
            ("id", json!(id)),
            ("slug", json!(slug)),
            ("region", json!(region)),
        ])),
        I::Tenants(TenantsCommand::List {
            partner,
            status,
            paging,
        }) => req(
            Method::GET,
            &["tenants"],
            Show::Table("tenants", TENANT_COLS),
        )
        .query("partner_id", partner)
        .query("status", status)
        .paging(&paging),
        I::Tenants(TenantsCommand::Get { id }) => req(Method::GET, &["tenants", &id], Show::Object),
        I::Tenants(TenantsCommand::Create {
            name,
            id,
            partner,
            slug,
            rate_limits,
        }) => req(Method::POST, &["tenants"], Show::Object).body(fields(&[
            ("name", json!(name)),
            ("id", json!(id)),
            ("partner_id", json!(partner)),
            ("slug", json!(slug)),
            ("rate_limits", rate_limit_object(&rate_limits)?),
        ])),
        I::Tenants(TenantsCommand::Update {
            id,
            name,
            status,
            rate_limits,
            clear_rate_limits,
        }) => {
            let mut body = fields(&[
                ("name", json!(name)),
                ("status", json!(status)),
                ("rate_limits", rate_limit_object(&rate_limits)?),
            ]);
            if clear_rate_limits {
                body.insert("rate_limits".into(), Value::Null);
            }
            req(Method::PATCH, &["tenants", &id], Show::Object).body(body)
        }
        I::Users(UsersCommand::List {
            tenant,
            query,
            status,
            paging,
        }) => {
            let t = tenant_of(c, s, tenant).await?;
            req(
                Method::GET,
                &["tenants", &t, "users"],
                Show::Table("users", USER_COLS),
            )
            .query("q", query)
            .query("status", status)
            .paging(&paging)
        }
        I::Users(UsersCommand::Get { user, tenant }) => {
            let t = tenant_of(c, s, tenant).await?;
            req(
                Method::GET,
                &["tenants", &t, "users", &user_id(&user)],
                Show::Object,
            )
        }
        I::Users(UsersCommand::Create {
            email,
            tenant,
            display_name,
            scopes,
            roles,
            groups,
        }) => {
            let t = tenant_of(c, s, tenant).await?;
            req(Method::POST, &["tenants", &t, "users"], Show::Object).body(fields(&[
                ("email", json!(email)),
                ("display_name", json!(display_name)),
                ("scopes", json!(scopes)),
                ("roles", json!(roles)),
                ("groups", json!(groups)),
            ]))
        }
        I::Users(UsersCommand::Update {
            user,
            tenant,
            display_name,
            scopes,
            status,
        }) => {
            let t = tenant_of(c, s, tenant).await?;
            req(
                Method::PATCH,
                &["tenants", &t, "users", &user_id(&user)],
                Show::Object,
            )
            .body(fields(&[
                ("display_name", json!(display_name)),
                ("scopes", json!(scopes)),
                ("status", json!(status)),
            ]))
        }
        I::Users(UsersCommand::Disable { user, tenant }) => {
            let t = tenant_of(c, s, tenant).await?;
            let id = user_id(&user);
            let done = Show::Done(
                format!("Disabled {id}"),
                json!({"id": id, "disabled": true}),
            );
            req(Method::DELETE, &["tenants", &t, "users", &id], done)
        }
        I::Groups(GroupsCommand::List { tenant, paging }) => {
            let t = tenant_of(c, s, tenant).await?;
            req(
                Method::GET,
                &["tenants", &t, "groups"],
                Show::Table("groups", GROUP_COLS),
            )
            .paging(&paging)
        }
        I::Groups(GroupsCommand::Create {
            name,
            tenant,
            display_name,
        }) => {
            let t = tenant_of(c, s, tenant).await?;
            req(Method::POST, &["tenants", &t, "groups"], Show::Object).body(fields(&[
                ("name", json!(name)),
                ("display_name", json!(display_name)),
            ]))
        }
        I::Groups(GroupsCommand::Delete { group, tenant }) => {
            let t = tenant_of(c, s, tenant).await?;
            let id = group_id(&group);
            let done = Show::Done(format!("Deleted {id}"), json!({"id": id, "deleted": true}));
            req(Method::DELETE, &["tenants", &t, "groups", &id], done)
        }
        I::Members(MembersCommand::List { group }) => req(
            Method::GET,
            &["groups", &group_id(&group), "members"],
            Show::Table("members", MEMBER_COLS),
        ),
        I::Members(MembersCommand::Add { group, user }) => {
            let (g, u) = (group_id(&group), user_id(&user));
            let done = Show::Done(
                format!("Added {u} to {g}"),
                json!({"group_id": g, "user_id": u, "added": true}),
            );
            req(Method::POST, &["groups", &g, "members"], done)
                .body(fields(&[("user_id", json!(u))]))
        }
        I::Members(MembersCommand::Remove { group, user }) => {
            let (g, u) = (group_id(&group), user_id(&user));
            let done = Show::Done(
                format!("Removed {u} from {g}"),
                json!({"group_id": g, "user_id": u, "removed": true}),
            );
            req(Method::DELETE, &["groups", &g, "members", &u], done)
        }
        I::Roles => req(Method::GET, &["roles"], Show::Table("roles", ROLE_COLS)),
        I::UserRoles(UserRolesCommand::Get { user }) => req(
            Method::GET,
            &["users", &user_id(&user), "roles"],
            Show::Object,
        ),
        I::UserRoles(UserRolesCommand::Set { user, roles }) => {
            let mut body = Map::new();
            body.insert("roles".into(), json!(roles));
            req(
                Method::PUT,
                &["users", &user_id(&user), "roles"],
                Show::Object,
            )
            .body(body)
        }
        I::Resolve {
            identity_type,
            identity_id,
        } => req(
            Method::GET,
            &["resolve", &identity_type, &identity_id],
            Show::Object,
        ),
        I::Sync { partner, tenant } => req(Method::POST, &["sync"], Show::Object)
            .query("partner_id", partner)
            .query("tenant_id", tenant),
    })
}

fn system_request(cmd: SystemCommand) -> Request {
    let path: &[&str] = match cmd {
        SystemCommand::Health => &["health"],
        SystemCommand::Ready => &["health", "ready"],
        SystemCommand::Detailed => &["health", "detailed"],
        SystemCommand::Version => &["version"],
    };
    Request::new(Method::GET, path, Show::Object)
}

async fn execute(req: Request, c: &ApiClient, global: &GlobalOpts) -> Result<(), ApiError> {
    let mut segs = vec!["v1"];
    segs.extend(req.path.iter().map(String::as_str));
    let url = c.url(&segs, &req.query)?;
    let r = c.send(req.method, url, req.body.as_ref()).await?;
    match req.show {
        Show::Done(_, done) if global.json => print_json(&done),
        _ if global.json => print_json(&r.body),
        Show::Done(text, _) => print_raw(&format!("{text}\n")),
        Show::Object => {
            let obj = r.body.as_object().cloned().unwrap_or_default();
            let pairs: Vec<(&str, String)> = obj
                .iter()
                .map(|(k, v)| (k.as_str(), value_cell(Some(v))))
                .collect();
            print_raw(&key_values(&pairs));
        }
        Show::Table(key, cols) => {
            let headers: Vec<&str> = cols.iter().map(|(h, _)| *h).collect();
            let mut t = Table::new(&headers[..]);
            for item in r.body[key].as_array().into_iter().flatten() {
                t.row(cols.iter().map(|(_, f)| value_cell(item.get(*f))).collect());
            }
            t.print();
            if let Some(total) = r.body.get("total") {
                print_raw(&format!(
                    "total: {}  page: {}\n",
                    value_cell(Some(total)),
                    value_cell(r.body.get("page"))
                ));
            }
        }
    }
    Ok(())
}

pub async fn run_identity(cmd: IdentityCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let c = ApiClient::new(&settings.authed_options()?)?;
    let req = identity_request(cmd, &c, &settings).await?;
    execute(req, &c, global).await
}

pub async fn run_system(cmd: SystemCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    // Health and readiness need no token; the detailed view and the version do.
    let opts = match cmd {
        SystemCommand::Health | SystemCommand::Ready => settings.client_options(None),
        _ => settings.authed_options()?,
    };
    let c = ApiClient::new(&opts)?;
    execute(system_request(cmd), &c, global).await
}
