//! Talking to the server: JSON over HTTP with ureq (blocking, no TLS in this build), the login,
//! and the access-token life cycle. Every authenticated call goes through [`Inner::call`] (or
//! [`Inner::call_get`], or [`Inner::settle_http`] for a request made without the lock, like a
//! chunk of photo bytes), which refreshes a token that is about to expire, refreshes and retries
//! once on `token_expired`, and purges the tenant's local data when the server says the device
//! is revoked or the account disabled.

use crate::error::{ClientError, Result};
use crate::store::{self, SessionRow, Store, now_ms};
use fieldsync_sync::DeviceId;
use fieldsync_sync::protocol::{ErrorBody, LoginRequest, RefreshRequest, TokenResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Largest response body read (a pull page is at most 8 MiB of payload, base64 inflates it).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// How long one request carrying raw bytes (a chunk of a photo) may take in all: a 1 MiB chunk
/// over a poor mobile link (a few KiB/s) must not be cut off by the 60 s of JSON calls.
const BYTES_TIMEOUT: Duration = Duration::from_secs(600);
/// Refresh the access token when it has less than this left.
const REFRESH_MARGIN_MS: i64 = 60_000;

/// Error codes after which the device must forget everything of the tenant.
pub(crate) const PURGE_CODES: [&str; 3] =
    ["device_revoked", "account_disabled", "refresh_token_reused"];

/// How the message of a request that reached no server starts.
const UNREACHABLE: &str = "Cannot reach the server";

/// Whether `e` says the server could not be reached at all (rather than that it answered
/// something unreadable). Both are `network_error`s; a caller that works offline may tell them
/// apart.
pub(crate) fn is_unreachable(e: &ClientError) -> bool {
    matches!(e, ClientError::Network { message, .. } if message.starts_with(UNREACHABLE))
}

/// What a failed HTTP exchange looked like.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// The server answered with a non-2xx status. `raw` is the answer's body as sent, for the
    /// few errors that carry more than a code and a message (`offset_mismatch` says how many
    /// bytes the server holds).
    Api {
        status: u16,
        body: ErrorBody,
        raw: Vec<u8>,
    },
    /// No usable answer.
    Network(String),
}

impl HttpError {
    pub(crate) fn into_client_error(self) -> ClientError {
        match self {
            HttpError::Network(m) => ClientError::network(m),
            HttpError::Api { status, body, .. } => {
                if PURGE_CODES.contains(&body.error.as_str()) {
                    ClientError::Revoked {
                        code: body.error,
                        message: body.message,
                    }
                } else if status == 401 || status == 403 {
                    ClientError::Auth {
                        code: body.error,
                        message: body.message,
                    }
                } else if status == 400 || status == 422 {
                    ClientError::Invalid {
                        code: body.error,
                        message: body.message,
                    }
                } else {
                    ClientError::Server {
                        code: body.error,
                        message: body.message,
                        status,
                    }
                }
            }
        }
    }

    /// The machine-readable code of a refusal, if the server answered.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            HttpError::Api { body, .. } => Some(&body.error),
            HttpError::Network(_) => None,
        }
    }

    /// A whole-number field of a refusal's JSON body beside `error` and `message`.
    pub(crate) fn detail_u64(&self, field: &str) -> Option<u64> {
        match self {
            HttpError::Api { raw, .. } => serde_json::from_slice::<serde_json::Value>(raw)
                .ok()?
                .get(field)?
                .as_u64(),
            HttpError::Network(_) => None,
        }
    }
}

/// What a request sends.
enum Body<'a> {
    None,
    Json(&'a [u8]),
    Octets(&'a [u8]),
}

/// A request body as JSON.
fn to_json<Req: Serialize>(body: &Req) -> Vec<u8> {
    serde_json::to_vec(body).expect("BUG: request types always serialize")
}

/// A blocking JSON client. Clones share the agent (and its connection pool).
#[derive(Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
}

impl Http {
    pub fn new() -> Http {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .timeout_connect(Some(Duration::from_secs(10)))
            .build();
        Http {
            agent: config.into(),
        }
    }

    /// POSTs `body` as JSON to `base` + `path` and reads the JSON answer.
    pub fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        body: &Req,
    ) -> std::result::Result<Resp, HttpError> {
        self.post_json(base, path, token, &to_json(body))
    }

    /// POSTs `body`, already JSON, to `base` + `path` and reads the JSON answer.
    pub fn post_json<Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<Resp, HttpError> {
        let bytes = self.post_bytes(base, path, token, body)?;
        parse_answer(base, path, &bytes)
    }

    /// POSTs `body`, already JSON, to `base` + `path` and returns the body of a 2xx answer
    /// undecoded (see [`parse_answer`]); a non-2xx answer is decoded into the error.
    pub fn post_bytes(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<Vec<u8>, HttpError> {
        self.exchange(base, path, token, Body::Json(body))
    }

    /// GETs `base` + `path` (with its query) and reads the JSON answer.
    pub fn get_json<Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
    ) -> std::result::Result<Resp, HttpError> {
        let bytes = self.exchange(base, path, token, Body::None)?;
        parse_answer(base, path, &bytes)
    }

    /// PUTs raw bytes (`application/octet-stream`) to `base` + `path` (with its query) and
    /// reads the JSON answer. Allowed [`BYTES_TIMEOUT`] rather than a JSON call's minute.
    pub fn put_octets<Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<Resp, HttpError> {
        let bytes = self.exchange(base, path, token, Body::Octets(body))?;
        parse_answer(base, path, &bytes)
    }

    /// One request: a POST of JSON, a PUT of raw bytes, or a GET. Returns the body of a 2xx
    /// answer undecoded; a non-2xx answer is decoded into the error.
    fn exchange(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        body: Body<'_>,
    ) -> std::result::Result<Vec<u8>, HttpError> {
        let url = url_of(base, path);
        let auth = token.map(|t| format!("Bearer {t}"));
        let sent = match body {
            Body::Json(body) => {
                let mut req = self
                    .agent
                    .post(&url)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json; charset=utf-8");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send(body)
            }
            Body::Octets(body) => {
                let mut req = self
                    .agent
                    .put(&url)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/octet-stream");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.config()
                    .timeout_global(Some(BYTES_TIMEOUT))
                    .build()
                    .send(body)
            }
            Body::None => {
                let mut req = self.agent.get(&url).header("Accept", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
        };
        let mut resp =
            sent.map_err(|e| HttpError::Network(format!("{UNREACHABLE} at {url}: {e}.")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| {
                HttpError::Network(format!(
                    "The server's answer from {url} could not be read: {e}."
                ))
            })?;
        if (200..300).contains(&status) {
            Ok(bytes)
        } else {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                error: format!("http_{status}"),
                message: format!("The server answered {status} to {path}."),
            });
            Err(HttpError::Api {
                status,
                body,
                raw: bytes,
            })
        }
    }
}

fn url_of(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// Decodes the body of a 2xx answer from [`Http::post_bytes`].
pub(crate) fn parse_answer<Resp: DeserializeOwned>(
    base: &str,
    path: &str,
    bytes: &[u8],
) -> std::result::Result<Resp, HttpError> {
    serde_json::from_slice(bytes).map_err(|e| {
        HttpError::Network(format!(
            "The server's answer from {} is not what this app expects: {e}.",
            url_of(base, path)
        ))
    })
}

/// The state behind a [`crate::FieldsyncClient`]'s mutex.
pub(crate) struct Inner {
    pub store: Store,
    pub http: Http,
    pub device_id: DeviceId,
    /// The data directory: the database and the photo files live under it.
    pub dir: std::path::PathBuf,
    /// The most photo bytes sent in one request (tests make it small).
    pub upload_chunk_bytes: usize,
}

impl Inner {
    /// The session, or `NotLoggedIn`.
    pub fn session(&self) -> Result<SessionRow> {
        store::session_get(&self.store.conn)?.ok_or_else(ClientError::not_logged_in)
    }

    /// Logs in and stores the session. Logging in as someone else (another user or tenant)
    /// than the owner of the local data first purges that data.
    pub fn login(
        &mut self,
        server_url: &str,
        tenant: &str,
        email: &str,
        password: &str,
    ) -> Result<SessionRow> {
        let server_url = server_url.trim().trim_end_matches('/').to_owned();
        if !(server_url.starts_with("http://") || server_url.starts_with("https://")) {
            return Err(ClientError::invalid(
                "invalid_server_url",
                format!("'{server_url}' is not an http:// URL."),
            ));
        }
        let req = LoginRequest {
            tenant: tenant.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            device_id: Some(self.device_id),
            device_name: Some(format!("fieldsync-device {}", std::env::consts::OS)),
        };
        let tokens: TokenResponse = self
            .http
            .post(&server_url, "/v1/auth/login", None, &req)
            .map_err(HttpError::into_client_error)?;
        let owner = format!("{}/{}", tokens.tenant_id, tokens.user_id);
        let tx = self.store.conn.unchecked_transaction()?;
        let other_owner = store::meta_get(&tx, "data_owner")?.is_some_and(|o| o != owner);
        if other_owner {
            store::purge(&tx)?;
        }
        store::meta_set(&tx, "data_owner", &owner)?;
        let row = SessionRow {
            server_url,
            tenant_slug: tenant.to_owned(),
            tenant_id: tokens.tenant_id.to_string(),
            user_id: tokens.user_id.to_string(),
            role: tokens.role.to_string(),
            email: email.to_owned(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_expires_at_ms: now_ms()
                .saturating_add((tokens.expires_in as i64).saturating_mul(1000)),
            clock_offset_ms: tokens.server_time_ms - now_ms(),
        };
        store::session_put(&tx, &row)?;
        tx.commit()?;
        if other_owner {
            // After the commit: files of a purge that rolled back would be missed.
            crate::photos::remove_all(&self.dir)?;
        }
        Ok(row)
    }

    /// Forgets the tokens; local documents (and unsent edits) stay for the next login.
    pub fn logout(&mut self) -> Result<()> {
        store::session_clear(&self.store.conn)
    }

    /// Deletes everything of the tenant and returns the error to report.
    pub fn purge_for(&mut self, code: String, message: String) -> ClientError {
        if let Err(e) = store::purge(&self.store.conn) {
            return e;
        }
        if let Err(e) = crate::photos::remove_all(&self.dir) {
            return e;
        }
        // The server refuses this device id from now on; a later login on this phone is a
        // new device, which an admin can see and allow.
        let fresh = DeviceId::new();
        if let Err(e) = store::meta_set(&self.store.conn, "device_id", &fresh.to_string()) {
            return e;
        }
        self.device_id = fresh;
        ClientError::Revoked {
            code,
            message: format!("{message} All data of this account was removed from this device."),
        }
    }

    /// Trades the refresh token for new tokens. The old refresh token is dead afterwards, so the
    /// new ones are stored before anything else happens.
    pub(crate) fn refresh(&mut self) -> Result<SessionRow> {
        let mut s = self.session()?;
        let req = RefreshRequest {
            refresh_token: s.refresh_token.clone(),
        };
        match self
            .http
            .post::<_, TokenResponse>(&s.server_url, "/v1/auth/refresh", None, &req)
        {
            Ok(t) => {
                s.access_token = t.access_token;
                s.refresh_token = t.refresh_token;
                s.access_expires_at_ms =
                    now_ms().saturating_add((t.expires_in as i64).saturating_mul(1000));
                s.clock_offset_ms = t.server_time_ms - now_ms();
                store::session_put(&self.store.conn, &s)?;
                Ok(s)
            }
            Err(HttpError::Api { body, .. }) if PURGE_CODES.contains(&body.error.as_str()) => {
                Err(self.purge_for(body.error, body.message))
            }
            Err(HttpError::Api { status, body, .. }) if status == 401 || status == 403 => {
                // The session is over, but unsent work stays for the next login.
                store::session_clear(&self.store.conn)?;
                Err(ClientError::NotLoggedIn {
                    code: body.error,
                    message: format!("{} Log in again.", body.message),
                })
            }
            Err(e) => Err(e.into_client_error()),
        }
    }

    /// A session whose access token is good for at least a minute.
    pub fn fresh_session(&mut self) -> Result<SessionRow> {
        let s = self.session()?;
        if s.access_expires_at_ms - now_ms() < REFRESH_MARGIN_MS {
            return self.refresh();
        }
        Ok(s)
    }

    /// An authenticated POST: refreshes ahead of expiry, retries once after `token_expired`,
    /// purges on revocation.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &Req,
    ) -> Result<Resp> {
        self.call_json(path, &to_json(body))
    }

    /// [`Inner::call`] with a body that is already JSON (a stored push batch).
    pub fn call_json<Resp: DeserializeOwned>(&mut self, path: &str, body: &[u8]) -> Result<Resp> {
        let s = self.fresh_session()?;
        let first = self
            .http
            .post_json(&s.server_url, path, Some(&s.access_token), body);
        self.settle_call(path, body, first)
    }

    /// An authenticated GET of `path` (with its query string), with the same token handling
    /// as [`Inner::call`].
    pub fn call_get<Resp: DeserializeOwned>(&mut self, path: &str) -> Result<Resp> {
        let s = self.fresh_session()?;
        let first = self
            .http
            .get_json(&s.server_url, path, Some(&s.access_token));
        self.settle(first, |http, s| {
            http.get_json(&s.server_url, path, Some(&s.access_token))
        })
    }

    /// Finishes an authenticated POST of `body` whose first attempt, made with the access
    /// token of a fresh session, ended in `first`: on `token_expired` refreshes and retries
    /// once, purges on revocation, and turns other failures into the error to report.
    pub(crate) fn settle_call<Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &[u8],
        first: std::result::Result<Resp, HttpError>,
    ) -> Result<Resp> {
        self.settle(first, |http, s| {
            http.post_json(&s.server_url, path, Some(&s.access_token), body)
        })
    }

    /// Finishes an authenticated request whose first attempt ended in `first`; `resend` makes
    /// it again with a session's (new) token.
    fn settle<Resp: DeserializeOwned>(
        &mut self,
        first: std::result::Result<Resp, HttpError>,
        resend: impl Fn(&Http, &SessionRow) -> std::result::Result<Resp, HttpError>,
    ) -> Result<Resp> {
        self.settle_http(first, resend)?
            .map_err(HttpError::into_client_error)
    }

    /// Like [`Inner::settle`], but a refusal other than an expired token or a revocation comes
    /// back as it was answered (in the inner result), for callers that act on the details of
    /// particular refusals. The outer error is a failed refresh or the revocation (after the
    /// purge).
    pub(crate) fn settle_http<Resp>(
        &mut self,
        first: std::result::Result<Resp, HttpError>,
        resend: impl Fn(&Http, &SessionRow) -> std::result::Result<Resp, HttpError>,
    ) -> Result<std::result::Result<Resp, HttpError>> {
        let mut outcome = first;
        let mut retried = false;
        loop {
            match outcome {
                Err(HttpError::Api { body: e, .. }) if e.error == "token_expired" && !retried => {
                    retried = true;
                    let s = self.refresh()?;
                    outcome = resend(&self.http, &s);
                }
                Err(HttpError::Api { body: e, .. }) if PURGE_CODES.contains(&e.error.as_str()) => {
                    return Err(self.purge_for(e.error, e.message));
                }
                other => return Ok(other),
            }
        }
    }
}
