//! Wire messages of the sync protocol (see `sync/PROTOCOL.md`). Every request and response
//! carries `v`, the protocol version; a server refuses a version it does not speak with
//! `unsupported_protocol_version` instead of guessing. Binary payloads (Automerge changes,
//! compacted documents, sync messages) travel as standard base64 inside JSON.

use crate::error::Rejection;
use crate::ids::DocId;
use crate::record::RecordKind;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest request body the server reads (bytes); larger ones get `payload_too_large`.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Default and largest page size of a pull (bytes of payload).
pub const DEFAULT_PULL_BYTES: u64 = 1024 * 1024;
pub const MAX_PULL_BYTES: u64 = 8 * 1024 * 1024;
/// Most documents in one push.
pub const MAX_PUSH_DOCS: usize = 5_000;

/// Bytes that travel as base64 in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(B64)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// Checks the version field of a message.
pub fn check_version(v: u32) -> Result<(), Rejection> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(Rejection::new(
            "unsupported_protocol_version",
            format!(
                "This server speaks sync protocol version {PROTOCOL_VERSION}, not {v}; update the app."
            ),
        ))
    }
}

/// `POST /v1/sync/push`: new changes for many documents. `batch_id` makes the push
/// idempotent: a retry with the same id returns the first answer and stores nothing again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushRequest {
    pub v: u32,
    pub batch_id: uuid::Uuid,
    pub docs: Vec<PushDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushDoc {
    pub doc_id: DocId,
    /// The record kind, as a string so an unknown kind is a per-document rejection.
    pub kind: String,
    /// Automerge changes, each one whole change chunk.
    pub changes: Vec<B64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub v: u32,
    pub batch_id: uuid::Uuid,
    pub results: Vec<PushResult>,
}

/// What became of one document's changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PushResult {
    /// Durably stored; `heads` are the server's heads for the document afterwards.
    Accepted { doc_id: DocId, heads: Vec<String> },
    /// Nothing stored. `doc` is the server's current version (absent if the caller may not see
    /// it or it does not exist): the phone replaces its copy with it and drops the change.
    Rejected {
        doc_id: DocId,
        error: Rejection,
        heads: Vec<String>,
        doc: Option<B64>,
    },
    /// The changes depend on changes the server does not have; nothing stored. The phone should
    /// resend everything since `heads` (the server's heads), or all its changes if it does not
    /// know them.
    MissingDeps {
        doc_id: DocId,
        missing: Vec<String>,
        heads: Vec<String>,
    },
}

impl PushResult {
    pub fn doc_id(&self) -> DocId {
        match self {
            PushResult::Accepted { doc_id, .. }
            | PushResult::Rejected { doc_id, .. }
            | PushResult::MissingDeps { doc_id, .. } => *doc_id,
        }
    }
}

/// `POST /v1/sync/pull`: what changed since `cursor` (absent: everything, as compacted docs).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PullRequest {
    pub v: u32,
    pub cursor: Option<String>,
    /// Page size in payload bytes (default 1 MiB, at most 8 MiB). A page holds at least one item.
    pub max_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    pub v: u32,
    pub items: Vec<PullItem>,
    /// Where the next pull starts. Opaque; store it only after the items are stored.
    pub cursor: String,
    /// More items are waiting: pull again at once.
    pub more: bool,
    /// The server's clock when it answered (ms since the Unix epoch). Phones learn from it how
    /// their monotonic clock maps to server time, to date events made offline.
    #[serde(default)]
    pub server_time_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PullItem {
    /// New changes of a document the phone may read.
    Changes {
        doc_id: DocId,
        kind: RecordKind,
        changes: Vec<B64>,
    },
    /// A whole document (compacted, with at most a short tail of changes): on first sync, or
    /// when the phone gained access to it. `heads` are its heads, so a phone without a copy can
    /// store it without decoding it first.
    Snapshot {
        doc_id: DocId,
        kind: RecordKind,
        doc: B64,
        #[serde(default)]
        heads: Vec<String>,
    },
    /// The phone may no longer read this document and must delete its copy.
    Revoke { doc_id: DocId, reason: String },
}

/// `POST /v1/sync/repair`: the phone lists the heads of every document it holds; the server
/// answers only for documents that differ.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepairRequest {
    pub v: u32,
    pub docs: Vec<DocHeads>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocHeads {
    pub doc_id: DocId,
    pub heads: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepairResponse {
    pub v: u32,
    /// Documents to add, replace-merge or delete (snapshots and revokes), and documents that
    /// differ, each with the server's first Automerge sync message.
    pub items: Vec<RepairItem>,
    /// A pull cursor valid from this moment on; the phone stores it after applying the items.
    pub cursor: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RepairItem {
    /// The phone lacks this document.
    Snapshot {
        doc_id: DocId,
        kind: RecordKind,
        doc: B64,
    },
    /// The phone holds a document that exists here but that it may not read; delete it.
    /// (Documents the server has never seen get no item: they are the phone's to push.)
    Revoke { doc_id: DocId, reason: String },
    /// The document differs: continue with Automerge sync messages for it (`/v1/sync/repair/sync`).
    Differs {
        doc_id: DocId,
        kind: RecordKind,
        heads: Vec<String>,
    },
}

/// `POST /v1/sync/repair/sync`: one round of Automerge's own sync protocol for each differing
/// document. The server answers each message with its own; changes the phone holds and the
/// server lacks go through `push` afterwards, so they are validated like any other change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepairSyncRequest {
    pub v: u32,
    pub docs: Vec<SyncMessage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub doc_id: DocId,
    /// An encoded `automerge::sync::Message`; absent in a reply when the server has nothing to say.
    pub message: Option<B64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepairSyncResponse {
    pub v: u32,
    pub docs: Vec<SyncMessage>,
}

/// Frames the server sends on the live WebSocket (`GET /v1/sync/live`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveFrame {
    /// Sent once on connect.
    Hello { v: u32 },
    /// Something new was committed: pull.
    Changed { seq: i64 },
    /// This device must stop syncing (revoked, user disabled) and purge the tenant's data.
    Revoked { reason: String },
}

/// The JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// Heads as hex strings, the way they travel.
pub fn heads_to_strings(heads: &[automerge::ChangeHash]) -> Vec<String> {
    heads.iter().map(|h| h.to_string()).collect()
}

/// Parses heads from the wire.
pub fn heads_from_strings(heads: &[String]) -> Result<Vec<automerge::ChangeHash>, Rejection> {
    heads
        .iter()
        .map(|h| {
            h.parse().map_err(|_| {
                Rejection::new("invalid_heads", format!("'{h}' is not a change hash."))
            })
        })
        .collect()
}

/// Cursor encoding: `s<seq>` once the phone has everything up to log entry `seq`, or
/// `b<seq>.<doc id>` while the first sync is walking the documents (in id order) as they
/// stood at `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    Start,
    Bootstrap { seq: i64, after: DocId },
    Log { seq: i64 },
}

impl Cursor {
    pub fn parse(s: Option<&str>) -> Result<Cursor, Rejection> {
        let bad = || {
            Rejection::new(
                "invalid_cursor",
                "The sync cursor is not one this server issued; sync from the start.",
            )
        };
        let Some(s) = s.filter(|s| !s.is_empty()) else {
            return Ok(Cursor::Start);
        };
        if let Some(rest) = s.strip_prefix('s') {
            let seq: i64 = rest.parse().map_err(|_| bad())?;
            if seq < 0 {
                return Err(bad());
            }
            return Ok(Cursor::Log { seq });
        }
        if let Some(rest) = s.strip_prefix('b') {
            let (seq, after) = rest.split_once('.').ok_or_else(bad)?;
            return Ok(Cursor::Bootstrap {
                seq: seq.parse().map_err(|_| bad())?,
                after: after.parse().map_err(|_| bad())?,
            });
        }
        Err(bad())
    }

    pub fn encode(&self) -> String {
        match self {
            Cursor::Start => String::new(),
            Cursor::Bootstrap { seq, after } => format!("b{seq}.{after}"),
            Cursor::Log { seq } => format!("s{seq}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for c in [
            Cursor::Log { seq: 42 },
            Cursor::Bootstrap {
                seq: 7,
                after: DocId::new(),
            },
        ] {
            assert_eq!(Cursor::parse(Some(&c.encode())), Ok(c));
        }
        assert_eq!(Cursor::parse(None), Ok(Cursor::Start));
        for bad in ["x1", "s-1", "sabc", "b1", "b1.nope"] {
            assert_eq!(
                Cursor::parse(Some(bad)).map_err(|e| e.code),
                Err("invalid_cursor".to_string())
            );
        }
    }

    #[test]
    fn wrong_protocol_version_is_refused() {
        assert!(check_version(PROTOCOL_VERSION).is_ok());
        assert_eq!(
            check_version(99).map_err(|e| e.code),
            Err("unsupported_protocol_version".into())
        );
    }

    #[test]
    fn every_wire_message_shape_is_stable() {
        let id: DocId = "01890a5d-ac96-774b-bcce-b302099a8057"
            .parse()
            .expect("BUG: literal id");
        let batch: uuid::Uuid = "01890a5d-ac96-774b-bcce-b302099a8058"
            .parse()
            .expect("BUG: literal id");
        let heads = vec!["5d1c".to_string()];
        let messages = serde_json::json!({
            "push_request": PushRequest { v: 1, batch_id: batch, docs: vec![PushDoc { doc_id: id, kind: "customer".into(), changes: vec![B64(vec![0x85, 0x6f])] }] },
            "push_response": PushResponse { v: 1, batch_id: batch, results: vec![PushResult::Accepted { doc_id: id, heads: heads.clone() }] },
            "pull_request": PullRequest { v: 1, cursor: Some("s41".into()), max_bytes: Some(65536) },
            "pull_response": PullResponse {
                v: 1,
                items: vec![
                    PullItem::Changes { doc_id: id, kind: RecordKind::Customer, changes: vec![B64(vec![1])] },
                    PullItem::Snapshot { doc_id: id, kind: RecordKind::Project, doc: B64(vec![2]), heads: heads.clone() },
                    PullItem::Revoke { doc_id: id, reason: "access_removed".into() },
                ],
                cursor: "s42".into(),
                more: false,
                server_time_ms: 1_795_000_000_000,
            },
            "repair_request": RepairRequest { v: 1, docs: vec![DocHeads { doc_id: id, heads: heads.clone() }] },
            "repair_response": RepairResponse {
                v: 1,
                items: vec![
                    RepairItem::Snapshot { doc_id: id, kind: RecordKind::Customer, doc: B64(vec![3]) },
                    RepairItem::Revoke { doc_id: id, reason: "access_removed".into() },
                    RepairItem::Differs { doc_id: id, kind: RecordKind::Customer, heads: heads.clone() },
                ],
                cursor: "s42".into(),
            },
            "repair_sync": RepairSyncRequest { v: 1, docs: vec![SyncMessage { doc_id: id, message: Some(B64(vec![0x42])) }] },
            "repair_sync_response": RepairSyncResponse { v: 1, docs: vec![SyncMessage { doc_id: id, message: None }] },
            "live": [LiveFrame::Hello { v: 1 }, LiveFrame::Changed { seq: 42 }, LiveFrame::Revoked { reason: "device_revoked".into() }],
            "error": ErrorBody { error: "token_expired".into(), message: "Your session token has expired; refresh it.".into() },
            "login": LoginRequest { tenant: "demo".into(), email: "rep1@demo.test".into(), password: "…".into(), device_id: None, device_name: Some("Pixel 8".into()) },
            "refresh": RefreshRequest { refresh_token: "3q2-7wX".into() },
            "tokens": TokenResponse {
                access_token: "eyJ…".into(),
                expires_in: 900,
                refresh_token: "3q2-7wX".into(),
                tenant_id: "01890a5d-ac96-774b-bcce-b302099a8059".parse().expect("BUG: literal id"),
                user_id: "01890a5d-ac96-774b-bcce-b302099a805a".parse().expect("BUG: literal id"),
                device_id: "01890a5d-ac96-774b-bcce-b302099a805b".parse().expect("BUG: literal id"),
                role: crate::Role::FieldRep,
                server_time_ms: 1_795_000_000_000,
            },
        });
        insta::assert_json_snapshot!(messages);
    }

    #[test]
    fn push_result_wire_shape_is_stable() {
        let id: DocId = "01890a5d-ac96-774b-bcce-b302099a8057"
            .parse()
            .expect("BUG: literal id");
        let r = vec![
            PushResult::Accepted {
                doc_id: id,
                heads: vec!["ab".into()],
            },
            PushResult::Rejected {
                doc_id: id,
                error: Rejection::new(
                    "invalid_latitude",
                    "Latitude 91 in 'location' is outside -90..90.",
                ),
                heads: vec![],
                doc: Some(B64(vec![1, 2, 3])),
            },
            PushResult::MissingDeps {
                doc_id: id,
                missing: vec!["cd".into()],
                heads: vec![],
            },
        ];
        insta::assert_json_snapshot!(r);
    }
}

/// `POST /v1/auth/login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The tenant's slug, e.g. `demo`.
    pub tenant: String,
    pub email: String,
    pub password: String,
    /// The phone's own device id (made once at install). A new one is made if absent.
    pub device_id: Option<crate::DeviceId>,
    pub device_name: Option<String>,
}

/// `POST /v1/auth/refresh`. The refresh token is single-use: the answer carries the next one.
/// Presenting a used token again revokes the device (someone copied it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// The answer to login and refresh.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Seconds the access token lives (short: 15 minutes by default).
    pub expires_in: u64,
    pub refresh_token: String,
    pub tenant_id: crate::TenantId,
    pub user_id: crate::UserId,
    pub device_id: crate::DeviceId,
    pub role: crate::Role,
    /// The server's clock (ms since the epoch) so the phone can learn its offset.
    pub server_time_ms: i64,
}
