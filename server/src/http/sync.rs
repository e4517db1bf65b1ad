//! The sync protocol's HTTP routes: push, pull, repair (see `sync/PROTOCOL.md`).

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use crate::app::AppState;
use crate::store::{PushItem, StoreError};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::protocol::*;
use fieldsync_sync::{DocId, RecordKind};
use std::collections::HashMap;

/// `POST /v1/sync/push`.
pub async fn push(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<PushRequest>,
) -> ApiResult<Json<PushResponse>> {
    check_version(req.v).map_err(ApiError::bad_request)?;
    if req.docs.len() > MAX_PUSH_DOCS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_documents",
            format!("A push may carry at most {MAX_PUSH_DOCS} documents; split it into batches."),
        ));
    }
    // One item per document: entries naming the same document twice are merged.
    let mut order: Vec<DocId> = Vec::new();
    let mut by_doc: HashMap<DocId, PushItem> = HashMap::new();
    for d in req.docs {
        let changes: Vec<Vec<u8>> = d.changes.into_iter().map(|b| b.0).collect();
        let item = match d.kind.parse::<RecordKind>() {
            Err(error) => PushItem::Refused(PushResult::Rejected {
                doc_id: d.doc_id,
                error,
                heads: vec![],
                doc: None,
            }),
            Ok(kind) => PushItem::Apply(Incoming {
                doc_id: d.doc_id,
                kind,
                changes,
            }),
        };
        match (by_doc.get_mut(&d.doc_id), item) {
            (None, item) => {
                order.push(d.doc_id);
                by_doc.insert(d.doc_id, item);
            }
            (Some(PushItem::Apply(existing)), PushItem::Apply(more))
                if existing.kind == more.kind =>
            {
                existing.changes.extend(more.changes)
            }
            (Some(slot), _) => {
                *slot = PushItem::Refused(PushResult::Rejected {
                    doc_id: d.doc_id,
                    error: fieldsync_sync::Rejection::new(
                        "kind_mismatch",
                        "The same document was sent twice with different kinds.",
                    ),
                    heads: vec![],
                    doc: None,
                })
            }
        }
    }
    let items = order
        .into_iter()
        .filter_map(|id| by_doc.remove(&id))
        .collect();
    let out = state
        .store
        .push(&auth.caller, auth.device, req.batch_id, items)
        .await?;
    state.announce_push(auth.caller.tenant, &out);
    Ok(Json(out.response))
}

/// `POST /v1/sync/pull`.
pub async fn pull(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<PullRequest>,
) -> ApiResult<Json<PullResponse>> {
    check_version(req.v).map_err(ApiError::bad_request)?;
    let cursor = Cursor::parse(req.cursor.as_deref()).map_err(ApiError::bad_request)?;
    let max = req
        .max_bytes
        .unwrap_or(DEFAULT_PULL_BYTES)
        .clamp(1, MAX_PULL_BYTES);
    match state
        .store
        .pull(&auth.caller, Some(auth.device), cursor, max)
        .await
    {
        Ok(r) => Ok(Json(r)),
        Err(StoreError::NotFound(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "The sync cursor is ahead of this server; sync from the start.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// `POST /v1/sync/repair`.
pub async fn repair(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<RepairRequest>,
) -> ApiResult<Json<RepairResponse>> {
    check_version(req.v).map_err(ApiError::bad_request)?;
    for d in &req.docs {
        heads_from_strings(&d.heads).map_err(ApiError::bad_request)?;
    }
    let heads = req.docs.into_iter().map(|d| (d.doc_id, d.heads)).collect();
    Ok(Json(state.store.repair(&auth.caller, heads).await?))
}

/// `POST /v1/sync/repair/sync`: answers each Automerge sync message from a fresh sync state.
/// The phone's message is read only for what it has and needs; changes in it are not applied
/// here (they would skip validation): the phone pushes them afterwards.
pub async fn repair_sync(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<RepairSyncRequest>,
) -> ApiResult<Json<RepairSyncResponse>> {
    use automerge::sync::{Message, State as SyncState, SyncDoc};
    check_version(req.v).map_err(ApiError::bad_request)?;
    if req.docs.len() > 1000 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_documents",
            "Repair at most 1000 documents per request.",
        ));
    }
    let mut out = Vec::with_capacity(req.docs.len());
    for m in req.docs {
        let Some((_, bytes)) = state.store.readable_doc(&auth.caller, m.doc_id).await? else {
            return Err(ApiError::not_found("record"));
        };
        let Some(raw) = m.message else {
            out.push(SyncMessage {
                doc_id: m.doc_id,
                message: None,
            });
            continue;
        };
        let msg = Message::decode(&raw.0).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_sync_message",
                format!("The sync message for {} cannot be read: {e}.", m.doc_id),
            )
        })?;
        let reply = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, String> {
            let doc = automerge::Automerge::load(&bytes).map_err(|e| e.to_string())?;
            let mut st = SyncState::new();
            st.their_heads = Some(msg.heads);
            st.their_need = Some(msg.need);
            st.their_have = Some(msg.have);
            Ok(doc.generate_sync_message(&mut st).map(|m| m.encode()))
        })
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "stored document does not load");
            ApiError::internal()
        })?;
        out.push(SyncMessage {
            doc_id: m.doc_id,
            message: reply.map(B64),
        });
    }
    Ok(Json(RepairSyncResponse {
        v: PROTOCOL_VERSION,
        docs: out,
    }))
}
