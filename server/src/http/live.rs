//! `GET /v1/sync/live`: a WebSocket on which the server tells a phone that something new was
//! committed (`changed`), so it pulls at once; or that it lost access (`revoked`), so it purges.
//! A notice goes to the phones of the users a change concerns (the records' principals, their
//! managers, anyone whose access moved) and to admins; it carries only the log position, and the
//! phone's pull decides what it may see. The socket closes when the access token
//! expires (close code 4001) and the phone reconnects with a fresh one.

use super::extract::Auth;
use crate::app::{AppState, LiveEvent};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use fieldsync_sync::Role;
use fieldsync_sync::protocol::{LiveFrame, PROTOCOL_VERSION};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub async fn live(State(state): State<AppState>, auth: Auth, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(state, auth, socket))
}

fn frame(f: &LiveFrame) -> Message {
    Message::Text(serde_json::to_string(f).unwrap_or_default().into())
}

async fn serve(state: AppState, auth: Auth, mut socket: WebSocket) {
    let mut events = state.live.subscribe();
    if socket
        .send(frame(&LiveFrame::Hello {
            v: PROTOCOL_VERSION,
        }))
        .await
        .is_err()
    {
        return;
    }
    let left = auth.expires_at.saturating_sub(crate::auth::unix_secs());
    let expiry = tokio::time::sleep(Duration::from_secs(left));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // pings are answered by the library; other frames are ignored
            },
            event = events.recv() => {
                let out = match event {
                    Ok(LiveEvent::Changed { tenant, seq, audience })
                        if tenant == auth.caller.tenant
                            && (auth.caller.role == Role::Admin || audience.contains(&auth.caller.user)) =>
                    {
                        LiveFrame::Changed { seq }
                    }
                    Ok(LiveEvent::Revoked { tenant, device, user, reason })
                        if tenant == auth.caller.tenant && (device == Some(auth.device) || user == Some(auth.caller.user)) =>
                    {
                        let _ = socket.send(frame(&LiveFrame::Revoked { reason })).await;
                        let _ = socket.send(Message::Close(Some(CloseFrame { code: 4003, reason: "revoked".into() }))).await;
                        return;
                    }
                    Ok(_) => continue,
                    // Fell behind: one notice covers everything missed.
                    Err(RecvError::Lagged(_)) => LiveFrame::Changed { seq: -1 },
                    Err(RecvError::Closed) => return,
                };
                if socket.send(frame(&out)).await.is_err() {
                    return;
                }
            },
            _ = &mut expiry => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code: 4001, reason: "token_expired".into() }))).await;
                return;
            }
        }
    }
}
