//! The live connection: a WebSocket (`GET /v1/sync/live`, plain `ws://` in this build) on which
//! the server announces new commits, so the device pulls at once instead of polling. The
//! connection only carries notifications; all data still moves through push and pull.
//!
//! [`LiveConnection::wait`] blocks for at most a timeout, which keeps it usable from a plain test
//! thread and from a mobile background task alike.

use crate::client::{HttpError, PURGE_CODES};
use crate::error::{ClientError, Result};
use crate::model::{LiveEvent, SyncReport};
use fieldsync_sync::protocol::{ErrorBody, LiveFrame};
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{HandshakeError, Message, WebSocket};

/// An open live connection. Drop it to disconnect.
pub struct LiveConnection {
    ws: Mutex<WebSocket<TcpStream>>,
}

/// `http://host:port/...` → (`host:port`, `ws://host:port/v1/sync/live`).
fn live_url(server_url: &str) -> Result<(String, String)> {
    let Some(rest) = server_url.strip_prefix("http://") else {
        return Err(ClientError::invalid(
            "unsupported_scheme",
            format!("Live updates need a plain http:// server in this build, not '{server_url}'."),
        ));
    };
    let host = rest.split('/').next().unwrap_or_default();
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    Ok((addr, format!("ws://{host}/v1/sync/live")))
}

enum Connect {
    Ok(Box<WebSocket<TcpStream>>),
    Refused(HttpError),
}

fn connect(server_url: &str, token: &str) -> Result<Connect> {
    let (addr, url) = live_url(server_url)?;
    let net = |e: std::io::Error| {
        ClientError::network(format!("Cannot reach the live endpoint {url}: {e}."))
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(net)?
        .next()
        .ok_or_else(|| ClientError::network(format!("'{addr}' does not resolve.")))?;
    let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(10)).map_err(net)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(net)?;
    let mut req = url.as_str().into_client_request().map_err(|e| {
        ClientError::invalid(
            "invalid_server_url",
            format!("Cannot build the live request: {e}."),
        )
    })?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        ClientError::storage("The stored access token is not a valid header value.")
    })?;
    req.headers_mut().insert("Authorization", auth);
    match tungstenite::client(req, stream) {
        Ok((ws, _)) => Ok(Connect::Ok(Box::new(ws))),
        Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok())
                .unwrap_or_else(|| ErrorBody {
                    error: format!("http_{status}"),
                    message: format!("The server refused the live connection ({status})."),
                });
            Ok(Connect::Refused(HttpError::Api {
                status,
                body,
                raw: Vec::new(),
            }))
        }
        Err(e) => Err(ClientError::network(format!(
            "The live connection to {url} failed: {e}."
        ))),
    }
}

impl LiveConnection {
    /// Waits up to `timeout_ms` for the next frame from the server.
    pub fn wait(&self, timeout_ms: u64) -> Result<LiveEvent> {
        let mut ws = self.ws.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(1));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(LiveEvent::Timeout);
            }
            ws.get_mut()
                .set_read_timeout(Some(left))
                .map_err(|e| ClientError::network(format!("The live connection failed: {e}.")))?;
            match ws.read() {
                Ok(Message::Text(t)) => match serde_json::from_str::<LiveFrame>(t.as_str()) {
                    Ok(LiveFrame::Hello { .. }) => return Ok(LiveEvent::Hello),
                    Ok(LiveFrame::Changed { seq }) => return Ok(LiveEvent::Changed { seq }),
                    Ok(LiveFrame::Revoked { reason }) => return Ok(LiveEvent::Revoked { reason }),
                    Err(_) => continue, // a frame type from a newer server: ignore
                },
                Ok(Message::Close(_)) => return Ok(LiveEvent::Closed),
                Ok(_) => continue, // pings are answered by tungstenite
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Ok(LiveEvent::Timeout);
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(LiveEvent::Closed);
                }
                Err(e) => {
                    return Err(ClientError::network(format!(
                        "The live connection failed: {e}."
                    )));
                }
            }
        }
    }

    /// Closes the connection politely.
    pub fn close(&self) {
        let mut ws = self.ws.lock().unwrap_or_else(|p| p.into_inner());
        let _ = ws.close(None);
        let _ = ws.flush();
    }
}

impl crate::FieldsyncClient {
    /// Opens the live connection (refreshing the access token first if needed).
    pub fn connect_live(&self) -> Result<LiveConnection> {
        let mut inner = self.lock();
        let mut s = inner.fresh_session()?;
        let mut retried = false;
        loop {
            match connect(&s.server_url, &s.access_token)? {
                Connect::Ok(ws) => {
                    return Ok(LiveConnection {
                        ws: Mutex::new(*ws),
                    });
                }
                Connect::Refused(HttpError::Api { body, .. })
                    if body.error == "token_expired" && !retried =>
                {
                    retried = true;
                    s = inner.refresh()?;
                }
                Connect::Refused(HttpError::Api { body, .. })
                    if PURGE_CODES.contains(&body.error.as_str()) =>
                {
                    return Err(inner.purge_for(body.error, body.message));
                }
                Connect::Refused(e) => return Err(e.into_client_error()),
            }
        }
    }

    /// Waits up to `timeout_ms` for the server to announce a change: `true` if one came,
    /// `false` on timeout. Hello frames are skipped. A `revoked` frame purges the local data
    /// and returns [`ClientError::Revoked`]; a closed connection is a `network_error`.
    pub fn wait_for_change(&self, conn: &LiveConnection, timeout_ms: u64) -> Result<bool> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            match conn.wait(left)? {
                LiveEvent::Hello => continue,
                LiveEvent::Changed { .. } => return Ok(true),
                LiveEvent::Timeout => return Ok(false),
                LiveEvent::Closed => {
                    return Err(ClientError::network(
                        "The server closed the live connection; connect again.",
                    ));
                }
                LiveEvent::Revoked { reason } => {
                    return Err(self.lock().purge_for("device_revoked".into(), reason));
                }
            }
        }
    }

    /// Waits up to `timeout_ms` for a change and syncs when one comes: the sync's report, or
    /// `None` on timeout.
    pub fn sync_on_change(
        &self,
        conn: &LiveConnection,
        timeout_ms: u64,
    ) -> Result<Option<SyncReport>> {
        if self.wait_for_change(conn, timeout_ms)? {
            self.sync().map(Some)
        } else {
            Ok(None)
        }
    }
}
