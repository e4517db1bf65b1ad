//! The photo record: what a photo is of and where it was taken, synced at once like any record,
//! while its bytes follow separately (addressed by their SHA-256) when the network allows.
//!
//! The bytes' identity (`sha256`, `size`, `mime`), the author, what the photo is attached to,
//! the capture time and the location evidence are fixed when the photo is taken. The author may
//! edit the caption and tags; reviewers add reviews (approve, reject, ask for a retake, with a
//! reason) and anyone who may see the photo adds comments. Reviews and comments are kept, never
//! edited, so the record's history is the review history.

use super::parse_user;
use crate::docio::{self, Obj, Reader};
use crate::error::Rejection;
use crate::evidence::Evidence;
use crate::ids::{DocId, UserId};
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

choice_enum!(
    /// What a photo documents.
    AttachKind, "attachment kind" {
        Visit => "visit", Project => "project", SiteDay => "site_day", Customer => "customer"
    }
);
choice_enum!(
    /// A reviewer's decision on a photo.
    PhotoDecision, "photo decision" { Approved => "approved", Rejected => "rejected", Retake => "retake" }
);

/// Image types accepted for photo bytes.
pub const PHOTO_MIME: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];
/// Largest photo accepted (bytes).
pub const MAX_PHOTO_BYTES: u64 = 40 << 20;

/// What a photo is attached to. For a site diary day, `site` and `day` name the day of the
/// project `id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: AttachKind,
    pub id: DocId,
    pub site: Option<String>,
    /// `YYYY-MM-DD`.
    pub day: Option<String>,
}

/// One review of a photo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoReview {
    pub id: String,
    pub by: UserId,
    pub at_ms: i64,
    pub decision: PhotoDecision,
    /// Why; required to reject or ask for a retake.
    pub reason: String,
}

/// One comment under a photo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoComment {
    pub id: String,
    pub by: UserId,
    pub at_ms: i64,
    pub text: String,
}

/// A photo record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    pub id: DocId,
    pub author: UserId,
    /// SHA-256 of the bytes, 64 lower-case hex digits.
    pub sha256: String,
    pub size: u64,
    pub mime: String,
    pub attached_to: Attachment,
    /// When the photo was taken, on the phone's reckoning (ms since the epoch).
    pub captured_at_ms: i64,
    /// Where and when, as for every field event.
    pub evidence: Option<Evidence>,
    pub caption: String,
    pub tags: Vec<String>,
    pub reviews: Vec<PhotoReview>,
    pub comments: Vec<PhotoComment>,
}

impl Photo {
    /// The latest review's decision, if any: what the author sees as the photo's status.
    pub fn status(&self) -> Option<PhotoDecision> {
        self.reviews.last().map(|r| r.decision)
    }

    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        root: &Obj<'_>,
        id: DocId,
    ) -> Result<Self, Rejection> {
        let att = r
            .opt_obj(root, "attached_to", "attached_to", ObjType::Map)?
            .ok_or_else(|| Rejection::new("missing_field", "Field 'attached_to' is required."))?;
        let attached_to = Attachment {
            kind: r.req_str(&att, "kind", "attached_to.kind")?.parse()?,
            id: r
                .req_str(&att, "id", "attached_to.id")?
                .parse()
                .map_err(|_| {
                    Rejection::new(
                        "invalid_id",
                        "Field 'attached_to.id' must be a record id (UUID).",
                    )
                })?,
            site: r.opt_str(&att, "site", "attached_to.site")?,
            day: r.opt_str(&att, "day", "attached_to.day")?,
        };
        let evidence = r
            .opt_obj(root, "evidence", "evidence", ObjType::Map)?
            .map(|o| Evidence::read_fields(r, &o, "evidence"))
            .transpose()?;
        let tags = match r.opt_obj(root, "tags", "tags", ObjType::Map)? {
            Some(map) => r.keys(&map),
            None => Vec::new(),
        };
        let mut reviews = Vec::new();
        for (id, path, o) in r.items(root, "reviews", "reviews")? {
            reviews.push(PhotoReview {
                by: r.req_user(&o, "by", &format!("{path}.by"))?,
                at_ms: r.req_i64(&o, "at_ms", &format!("{path}.at_ms"))?,
                decision: r
                    .req_str(&o, "decision", &format!("{path}.decision"))?
                    .parse()?,
                reason: r
                    .opt_str(&o, "reason", &format!("{path}.reason"))?
                    .unwrap_or_default(),
                id,
            });
        }
        reviews.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        let mut comments = Vec::new();
        for (id, path, o) in r.items(root, "comments", "comments")? {
            comments.push(PhotoComment {
                by: r.req_user(&o, "by", &format!("{path}.by"))?,
                at_ms: r.req_i64(&o, "at_ms", &format!("{path}.at_ms"))?,
                text: r
                    .opt_str(&o, "text", &format!("{path}.text"))?
                    .unwrap_or_default(),
                id,
            });
        }
        comments.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        Ok(Photo {
            id,
            author: parse_user(&r.req_str(root, "author", "author")?, "author")?,
            sha256: r.req_str(root, "sha256", "sha256")?,
            size: r
                .opt_u64(root, "size", "size")?
                .ok_or_else(|| Rejection::new("missing_field", "Field 'size' is required."))?,
            mime: r.req_str(root, "mime", "mime")?,
            attached_to,
            captured_at_ms: r.req_i64(root, "captured_at_ms", "captured_at_ms")?,
            evidence,
            caption: r.opt_str(root, "caption", "caption")?.unwrap_or_default(),
            tags,
            reviews,
            comments,
        })
    }

    pub(crate) fn write_fields<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        docio::put(tx, &ROOT, "author", self.author.as_string())?;
        docio::put(tx, &ROOT, "sha256", self.sha256.as_str())?;
        docio::put(tx, &ROOT, "size", self.size)?;
        docio::put(tx, &ROOT, "mime", self.mime.as_str())?;
        let att = docio::ensure_map(tx, &ROOT, "attached_to")?;
        docio::put(tx, &att, "kind", self.attached_to.kind.as_str())?;
        docio::put(tx, &att, "id", self.attached_to.id.as_string())?;
        docio::put_opt(tx, &att, "site", self.attached_to.site.as_deref())?;
        docio::put_opt(tx, &att, "day", self.attached_to.day.as_deref())?;
        docio::put(tx, &ROOT, "captured_at_ms", self.captured_at_ms)?;
        if let Some(ev) = &self.evidence {
            ev.write_at(tx, &ROOT, "evidence")?;
        }
        docio::put_text(tx, &ROOT, "caption", &self.caption)?;
        let tags = docio::ensure_map(tx, &ROOT, "tags")?;
        docio::retain_keys(tx, &tags, &self.tags)?;
        for t in &self.tags {
            docio::put(tx, &tags, t, true)?;
        }
        // Created with the record, so two first reviewers or commenters never make rival maps.
        let reviews = docio::ensure_map(tx, &ROOT, "reviews")?;
        for rv in &self.reviews {
            let o = docio::ensure_map(tx, &reviews, &rv.id)?;
            docio::put(tx, &o, "by", rv.by.as_string())?;
            docio::put(tx, &o, "at_ms", rv.at_ms)?;
            docio::put(tx, &o, "decision", rv.decision.as_str())?;
            docio::put(tx, &o, "reason", rv.reason.as_str())?;
        }
        let comments = docio::ensure_map(tx, &ROOT, "comments")?;
        for c in &self.comments {
            let o = docio::ensure_map(tx, &comments, &c.id)?;
            docio::put(tx, &o, "by", c.by.as_string())?;
            docio::put(tx, &o, "at_ms", c.at_ms)?;
            docio::put(tx, &o, "text", c.text.as_str())?;
        }
        Ok(())
    }
}
