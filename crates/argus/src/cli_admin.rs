//! `argus admin ...`: the admin HTTP API from the command line, authenticated as an admin client with the
//! client-credentials grant (`client_secret_basic`, scope `argus:admin`), and `argus admin bootstrap`, which writes
//! the first admin client straight into the store.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use argus_model::{Clock, SystemClock, Timestamp};
use argus_oauth::admin::{ADMIN_SCOPE, MAX_PAGE_LIMIT};
use argus_oauth::{ClientRegistration, GrantType, TokenEndpointAuthMethod, hash_client_secret, new_client_secret};
use argus_store::Store;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::keys::{DataPlace, audit_offline};

/// The client id `argus admin bootstrap` and `argus up --demo` create.
pub const BOOTSTRAP_CLIENT_ID: &str = "argus-admin";

/// `argus admin`: options shared by every subcommand.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The issuer's URL.
    #[arg(long, env = "ARGUS_ISSUER", default_value = "http://127.0.0.1:7400", global = true)]
    pub issuer: String,
    /// The admin client's id.
    #[arg(long, env = "ARGUS_ADMIN_CLIENT_ID", default_value = BOOTSTRAP_CLIENT_ID, global = true)]
    pub client_id: String,
    /// The admin client's secret (printed once by `argus admin bootstrap` or `argus up --demo`). Prefer the
    /// environment variable: command lines are visible to other users of the machine.
    #[arg(long, env = "ARGUS_ADMIN_CLIENT_SECRET", hide_env_values = true, global = true)]
    pub client_secret: Option<String>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create (or reset) the admin client `argus-admin` directly in the store and print its new secret, once.
    /// Needs access to the data directory, not to a running issuer: it is how the first admin gets in, and how an
    /// operator who lost the secret gets back in.
    Bootstrap {
        #[command(flatten)]
        place: DataPlace,
    },
    /// Revoke by scope: the store revokes the refresh tokens (and sessions, consent) in scope, and every gate
    /// refuses the covered access tokens until they would have expired.
    Revoke(RevokeArgs),
    /// List the revocations in force.
    Revocations {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Manage clients (apps).
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// List the issuer's signing keys as the running issuer sees them.
    Keys,
}

/// Which part of a list to print. The admin API answers lists a page at a time; without `--limit` every page is
/// fetched and printed as one list.
#[derive(Debug, Default, clap::Args)]
pub struct PageArgs {
    /// Print one page of at most N entries (1 to 1000) and, if more follow, the cursor of the next page as `next`.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Start after this cursor: the `next` of an earlier page.
    #[arg(long, value_name = "CURSOR", requires = "limit")]
    pub after: Option<String>,
}

/// What to revoke: exactly one of these.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// One access token, by its `jti`.
    #[arg(long, value_name = "JTI")]
    pub token: Option<String>,
    /// One sign-in session (`sid`): its tokens, its refresh families, and the session itself.
    #[arg(long, value_name = "SID")]
    pub session: Option<String>,
    /// One refresh-token family (one sign-in of one app, across rotations).
    #[arg(long, value_name = "FAMILY")]
    pub family: Option<String>,
    /// One device (browser): everything signed in on it.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Every token and session of a user, by `sub` or user name.
    #[arg(long, value_name = "SUB_OR_NAME")]
    pub user: Option<String>,
    /// Every token of an app.
    #[arg(long, value_name = "CLIENT_ID")]
    pub client: Option<String>,
    /// One user's grant to one app: its tokens and the consent.
    #[arg(long, num_args = 2, value_names = ["USER", "CLIENT_ID"])]
    pub grant: Option<Vec<String>>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClientsCommand {
    /// Register a client. A confidential client's secret is printed once.
    Create {
        /// Name shown on the consent page.
        #[arg(long)]
        name: Option<String>,
        /// The client id (generated when absent).
        #[arg(long = "id", value_name = "CLIENT_ID")]
        id: Option<String>,
        /// A redirect URI (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A scope the client may ask for (repeat for several).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// none, client_secret_basic, client_secret_post or private_key_jwt.
        #[arg(long, value_name = "METHOD")]
        auth_method: Option<String>,
        /// authorization_code, refresh_token or client_credentials (repeat for several).
        #[arg(long = "grant-type", value_name = "GRANT")]
        grant_types: Vec<String>,
        /// The whole registration as JSON (a file, or - for stdin), instead of the options above.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "id", "redirect_uris", "scopes", "auth_method", "grant_types"])]
        json: Option<PathBuf>,
    },
    /// List the clients, by client id.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one client.
    Show {
        #[arg(value_name = "CLIENT_ID")]
        id: String,
    },
    /// Change a client: the options given, or a JSON patch.
    Update {
        #[arg(value_name = "CLIENT_ID")]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Replace the redirect URIs (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Replace the allowed scopes (repeat for several).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        #[arg(long, value_name = "METHOD")]
        auth_method: Option<String>,
        /// Replace the grant types (repeat for several).
        #[arg(long = "grant-type", value_name = "GRANT")]
        grant_types: Vec<String>,
        /// The patch as JSON (a file, or - for stdin), instead of the options above.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "redirect_uris", "scopes", "auth_method", "grant_types"])]
        json: Option<PathBuf>,
    },
    /// Disable a client and revoke every token it holds.
    Disable {
        #[arg(value_name = "CLIENT_ID")]
        id: String,
    },
    /// Give a confidential client a new secret (printed once); the old one stops working.
    RotateSecret {
        #[arg(value_name = "CLIENT_ID")]
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Create a user with a password.
    Create {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// The address notices are e-mailed to (when `[notify.smtp]` is configured).
        #[arg(long)]
        email: Option<String>,
    },
    /// List the users, in the order they were created.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one user, by `sub` or user name.
    Show { user: String },
    /// Change a user's password, or disable / enable them.
    Update {
        user: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Disable the user (ends their sessions, revokes their tokens).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable the user again.
        #[arg(long)]
        enable: bool,
        /// A new address for notices by e-mail; "" removes it.
        #[arg(long)]
        email: Option<String>,
    },
    /// Disable a user: their sessions end and every token of theirs is revoked.
    Disable { user: String },
    /// Remove a user's TOTP second factor and recovery codes (a lost phone): they sign in with the password alone
    /// and can enrol again.
    ResetTotp { user: String },
    /// Remove all of a user's passkeys (lost or compromised keys): they are no longer offered at sign-in, and the
    /// user can register new ones.
    ResetPasskeys { user: String },
    /// Delete a user and everything of theirs (sessions, tokens, consents, second factors, notices); every gate
    /// refuses their access tokens. Asks nothing: it cannot be undone. The user name is free again.
    Delete { user: String },
}

/// A password, from the environment or stdin (never a plain command-line argument, which `ps` shows).
#[derive(Debug, clap::Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

impl PasswordArgs {
    /// The password: the first line of stdin with `--password-stdin`, else `ARGUS_USER_PASSWORD`, else none.
    fn read(&self) -> anyhow::Result<Option<String>> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the password from stdin")?;
            let password = line.trim_end_matches(['\r', '\n']).to_owned();
            if password.is_empty() {
                bail!("the password on stdin is empty");
            }
            return Ok(Some(password));
        }
        Ok(std::env::var("ARGUS_USER_PASSWORD").ok().filter(|p| !p.is_empty()))
    }
}

/// Run an `admin` command.
pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    rt.block_on(async {
        if let AdminCommand::Bootstrap { place } = &args.command {
            return bootstrap_cli(place, &args.client_id).await;
        }
        let secret = args
            .client_secret
            .as_deref()
            .ok_or_else(|| anyhow!("the admin client's secret is needed: set ARGUS_ADMIN_CLIENT_SECRET"))?;
        let api = Api::connect(&args.issuer, &args.client_id, secret).await?;
        let answer = api_command(&api, args.command).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        Ok(())
    })
}

async fn bootstrap_cli(place: &DataPlace, client_id: &str) -> anyhow::Result<()> {
    let (_, store) = place.open(false).await?;
    let secret = bootstrap_admin_client(&store, client_id, SystemClock.now()).await?;
    audit_offline(&store, "client.bootstrap", client_id).await;
    println!("admin client {client_id} is ready (client_secret_basic, client_credentials, scope {ADMIN_SCOPE}).");
    println!("Its secret, shown only now:");
    println!("{secret}");
    println!("Use it with: export ARGUS_ADMIN_CLIENT_SECRET='<the secret>'; argus admin clients list");
    Ok(())
}

/// Create or reset the admin client `client_id`: confidential (`client_secret_basic`), client credentials only,
/// scope `argus:admin`, enabled, with a fresh secret. Returns the secret, which is stored only as its hash.
pub async fn bootstrap_admin_client(store: &Store, client_id: &str, now: Timestamp) -> anyhow::Result<String> {
    use argus_oauth::IssuerStore;
    let secret = new_client_secret();
    let client = ClientRegistration {
        client_id: client_id.to_owned(),
        name: "Argus administration".to_owned(),
        allowed_scopes: vec![ADMIN_SCOPE.to_owned()],
        public: false,
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        client_secret_hash: Some(hash_client_secret(&secret)),
        grant_types: vec![GrantType::ClientCredentials],
        ..ClientRegistration::default()
    };
    client.validate().context("the admin client registration")?;
    store.upsert_client(&client, now).await.context("cannot store the admin client")?;
    Ok(secret)
}

async fn api_command(api: &Api, command: AdminCommand) -> anyhow::Result<Value> {
    match command {
        AdminCommand::Bootstrap { .. } => Err(anyhow!("bootstrap works on the store, not the API")),
        AdminCommand::Revoke(args) => {
            let scope = revocation_scope(api, args).await?;
            api.call(Method::POST, &["revocations"], Some(json!({ "scope": scope }))).await
        }
        AdminCommand::Revocations { page } => api.list("revocations", page).await,
        AdminCommand::Keys => api.call(Method::GET, &["keys"], None).await,
        AdminCommand::Clients { command } => clients_command(api, command).await,
        AdminCommand::Users { command } => users_command(api, command).await,
    }
}

/// The `scope` of a revocation request; a user named by user name is looked up first.
async fn revocation_scope(api: &Api, args: RevokeArgs) -> anyhow::Result<Value> {
    Ok(if let Some(jti) = args.token {
        json!({ "kind": "token", "jti": jti })
    } else if let Some(sid) = args.session {
        json!({ "kind": "session", "sid": sid })
    } else if let Some(family) = args.family {
        json!({ "kind": "family", "family": family })
    } else if let Some(device) = args.device {
        json!({ "kind": "device", "device": device })
    } else if let Some(user) = args.user {
        json!({ "kind": "user", "sub": api.user_sub(&user).await? })
    } else if let Some(client_id) = args.client {
        json!({ "kind": "client", "client_id": client_id })
    } else if let Some([user, client_id]) = args.grant.as_deref() {
        json!({ "kind": "grant", "sub": api.user_sub(user).await?, "client_id": client_id })
    } else {
        bail!("say what to revoke: --token, --session, --family, --device, --user, --client or --grant")
    })
}

async fn clients_command(api: &Api, command: ClientsCommand) -> anyhow::Result<Value> {
    match command {
        ClientsCommand::Create { name, id, redirect_uris, scopes, auth_method, grant_types, json } => {
            let body = match json {
                Some(file) => read_json(&file)?,
                None => {
                    let mut body = json!({ "name": name.ok_or_else(|| anyhow!("--name is required"))? });
                    set_opt(&mut body, "client_id", id);
                    set_list(&mut body, "redirect_uris", redirect_uris);
                    set_list(&mut body, "allowed_scopes", scopes);
                    set_opt(&mut body, "token_endpoint_auth_method", auth_method);
                    set_list(&mut body, "grant_types", grant_types);
                    body
                }
            };
            api.call(Method::POST, &["clients"], Some(body)).await
        }
        ClientsCommand::List { page } => api.list("clients", page).await,
        ClientsCommand::Show { id } => api.call(Method::GET, &["clients", &id], None).await,
        ClientsCommand::Update { id, name, redirect_uris, scopes, auth_method, grant_types, json } => {
            let body = match json {
                Some(file) => read_json(&file)?,
                None => {
                    let mut body = json!({});
                    set_opt(&mut body, "name", name);
                    set_list(&mut body, "redirect_uris", redirect_uris);
                    set_list(&mut body, "allowed_scopes", scopes);
                    set_opt(&mut body, "token_endpoint_auth_method", auth_method);
                    set_list(&mut body, "grant_types", grant_types);
                    body
                }
            };
            api.call(Method::PATCH, &["clients", &id], Some(body)).await
        }
        ClientsCommand::Disable { id } => api.call(Method::POST, &["clients", &id, "disable"], None).await,
        ClientsCommand::RotateSecret { id } => api.call(Method::POST, &["clients", &id, "secret"], None).await,
    }
}

async fn users_command(api: &Api, command: UsersCommand) -> anyhow::Result<Value> {
    match command {
        UsersCommand::Create { username, password, email } => {
            let password = password
                .read()?
                .ok_or_else(|| anyhow!("give the password with --password-stdin or ARGUS_USER_PASSWORD"))?;
            let mut body = json!({ "username": username, "password": password });
            set_opt(&mut body, "email", email);
            api.call(Method::POST, &["users"], Some(body)).await
        }
        UsersCommand::List { page } => api.list("users", page).await,
        UsersCommand::Show { user } => api.call(Method::GET, &["users", &user], None).await,
        UsersCommand::Update { user, password, disable, enable, email } => {
            let mut body = json!({});
            set_opt(&mut body, "password", password.read()?);
            set_opt(&mut body, "email", email);
            if disable || enable {
                body["disabled"] = Value::Bool(disable);
            }
            api.call(Method::PATCH, &["users", &user], Some(body)).await
        }
        UsersCommand::Disable { user } => api.call(Method::POST, &["users", &user, "disable"], None).await,
        UsersCommand::ResetTotp { user } => api.call(Method::DELETE, &["users", &user, "totp"], None).await,
        UsersCommand::ResetPasskeys { user } => api.call(Method::DELETE, &["users", &user, "passkeys"], None).await,
        UsersCommand::Delete { user } => {
            // The answer is 204 and empty: the user is read first so the output names who was deleted, and deleted
            // by the `sub` read, so the user printed is the user deleted.
            let shown = api.call(Method::GET, &["users", &user], None).await?;
            let sub = shown["user"]["sub"].as_str().ok_or_else(|| anyhow!("no user {user:?}"))?;
            api.call(Method::DELETE, &["users", sub], None).await?;
            Ok(json!({ "deleted": shown["user"] }))
        }
    }
}

fn set_opt(body: &mut Value, key: &str, value: Option<String>) {
    if let Some(v) = value {
        body[key] = Value::String(v);
    }
}

fn set_list(body: &mut Value, key: &str, values: Vec<String>) {
    if !values.is_empty() {
        body[key] = Value::Array(values.into_iter().map(Value::String).collect());
    }
}

/// JSON from a file, or from stdin for `-`.
fn read_json(file: &PathBuf) -> anyhow::Result<Value> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read stdin")?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

/// The admin API, with an admin token.
struct Api {
    http: Client<HttpConnector, Full<Bytes>>,
    base: url::Url,
    token: String,
}

impl Api {
    /// Discover the token endpoint and get an admin token with the client-credentials grant.
    async fn connect(issuer: &str, client_id: &str, secret: &str) -> anyhow::Result<Self> {
        let http = Client::builder(TokioExecutor::new()).build_http();
        let base = url::Url::parse(issuer.trim_end_matches('/')).with_context(|| format!("issuer URL {issuer:?}"))?;
        let token = admin_token(&http, issuer, client_id, secret).await?;
        Ok(Self { http, base, token })
    }

    /// Call `/admin/v1/<segments>`; a problem answer becomes an error with its title and detail.
    async fn call(&self, method: Method, segments: &[&str], body: Option<Value>) -> anyhow::Result<Value> {
        self.call_with_query(method, segments, &[], body).await
    }

    /// The list `/admin/v1/<collection>` (`{"<collection>": [...]}`): one page as the API answers it with
    /// `--limit`, else every page, followed by their `next` cursors, as one list.
    async fn list(&self, collection: &str, page: PageArgs) -> anyhow::Result<Value> {
        if let Some(limit) = page.limit {
            let limit = limit.to_string();
            let mut query = vec![("limit", limit.as_str())];
            query.extend(page.after.as_deref().map(|a| ("after", a)));
            return self.call_with_query(Method::GET, &[collection], &query, None).await;
        }
        let max = MAX_PAGE_LIMIT.to_string();
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![("limit", max.as_str())];
            query.extend(after.as_deref().map(|a| ("after", a)));
            let mut answer = self.call_with_query(Method::GET, &[collection], &query, None).await?;
            let Some(items) = answer[collection].as_array_mut() else {
                bail!("the answer for {collection} has no list");
            };
            all.append(items);
            match answer["next"].as_str() {
                // A cursor that does not move would loop for ever.
                Some(next) if after.as_deref() == Some(next) => bail!("the {collection} list repeats its cursor"),
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        Ok(json!({ collection: all }))
    }

    /// [`Api::call`] with query parameters.
    async fn call_with_query(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("the issuer URL cannot have a path"))?
            .pop_if_empty()
            .extend(["admin", "v1"])
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let bearer = format!("Bearer {}", self.token);
        let mut headers = vec![(header::AUTHORIZATION, bearer.as_str())];
        if body.is_some() {
            headers.push((header::CONTENT_TYPE, "application/json"));
        }
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let (status, answer) = send(&self.http, method, url.as_str(), &headers, body).await?;
        if !status.is_success() {
            bail!(
                "{status}: {} {}",
                answer["title"].as_str().unwrap_or("error"),
                answer["detail"].as_str().map(|d| format!("({d})")).unwrap_or_default()
            );
        }
        Ok(answer)
    }

    /// The `sub` of a user named by `sub` or user name.
    async fn user_sub(&self, user: &str) -> anyhow::Result<String> {
        let answer = self.call(Method::GET, &["users", user], None).await?;
        answer["user"]["sub"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("no user {user:?}"))
    }
}

/// Discover the issuer's token endpoint and get an admin token (client credentials, scope `argus:admin`): for the
/// admin API, and for the watch API (`argus alerts`, `argus actions`), which takes the same tokens.
pub(crate) async fn admin_token(
    http: &Client<HttpConnector, Full<Bytes>>,
    issuer: &str,
    client_id: &str,
    secret: &str,
) -> anyhow::Result<String> {
    let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let (status, discovery) = send(http, Method::GET, &discovery_url, &[], None).await?;
    if status != StatusCode::OK {
        bail!("discovery at {discovery_url} answered {status}");
    }
    let token_endpoint =
        discovery["token_endpoint"].as_str().ok_or_else(|| anyhow!("the issuer's metadata has no token_endpoint"))?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("scope", ADMIN_SCOPE)
        .finish();
    let basic = basic_credentials(client_id, secret);
    let headers =
        [(header::AUTHORIZATION, basic.as_str()), (header::CONTENT_TYPE, "application/x-www-form-urlencoded")];
    let (status, answer) = send(http, Method::POST, token_endpoint, &headers, Some(form.into_bytes())).await?;
    if status != StatusCode::OK {
        bail!(
            "the issuer refused the admin client ({status}): {} {}",
            answer["error"].as_str().unwrap_or("?"),
            answer["error_description"].as_str().unwrap_or("")
        );
    }
    Ok(answer["access_token"].as_str().ok_or_else(|| anyhow!("no access_token in the answer"))?.to_owned())
}

/// `Basic` credentials as RFC 6749 §2.3.1 has them: id and secret form-encoded, then base64.
fn basic_credentials(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

pub(crate) async fn send(
    http: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    headers: &[(header::HeaderName, &str)],
    body: Option<Vec<u8>>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = Request::builder().method(method.clone()).uri(url);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let response = http.request(request).await.with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.with_context(|| format!("{method} {url}: body"))?.to_bytes();
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Ok((status, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        use base64::Engine;
        let v = basic_credentials("a:b", "s+/ é");
        let decoded = base64::engine::general_purpose::STANDARD.decode(v.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "a%3Ab:s%2B%2F+%C3%A9");
    }
}
