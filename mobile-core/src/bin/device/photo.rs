//! The photo commands of `fieldsync-device`: take a photo from a file (attached to a visit, a
//! project, a site diary day or a customer, with an optional location fix), list and show
//! photos with their review status, comment, review (site managers), and the upload queue.

use crate::field::{OptionalFixArgs, out, pending, utc};
use clap::{ArgGroup, Args, Subcommand};
use fieldsync_mobile_core::{
    AttachTo, ClientError, FieldsyncClient, PhotoSource, PhotoView, UploadQueueStatus, UploadReport,
};

#[derive(Subcommand)]
pub enum PhotoCmd {
    /// Take a photo from a file (JPEG, PNG or WebP): it is copied into the phone's storage and
    /// queued for upload.
    Add {
        /// The photo's file.
        file: String,
        /// What it documents: visit:ID, project:ID, site-day:PROJECT_ID:SITE:YYYY-MM-DD
        /// (SITE: the site's id, or its name) or customer:ID.
        #[arg(long, value_name = "KIND:ID")]
        to: String,
        #[arg(long)]
        caption: Option<String>,
        /// A tag (repeat for more).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        #[command(flatten)]
        fix: OptionalFixArgs,
    },
    /// Every photo on this phone, newest first.
    List,
    /// One photo, with its reviews and comments.
    Show { id: String },
    /// The upload queue of photo bytes.
    Status,
    /// Comment under a photo.
    Comment { id: String, text: String },
    /// Review a photo (site managers, managers, admins): --approve, --reject REASON or
    /// --retake REASON.
    #[command(group(ArgGroup::new("decision").required(true).args(["approve", "reject", "retake"])))]
    Review {
        id: String,
        #[arg(long)]
        approve: bool,
        #[arg(long, value_name = "REASON")]
        reject: Option<String>,
        #[arg(long, value_name = "REASON")]
        retake: Option<String>,
    },
    /// Send queued photo bytes now (a sync sends them too).
    Upload(UploadArgs),
}

#[derive(Args)]
pub struct UploadArgs {
    /// Send at most this many bytes.
    #[arg(long)]
    max_bytes: Option<u64>,
}

fn bad_target(spec: &str) -> ClientError {
    ClientError::Invalid {
        code: "invalid_argument".into(),
        message: format!(
            "'{spec}' is not visit:ID, project:ID, site-day:PROJECT_ID:SITE:YYYY-MM-DD or customer:ID."
        ),
    }
}

/// `--to`: `KIND:ID`, or `site-day:PROJECT_ID:SITE:YYYY-MM-DD` (the site's name may contain
/// colons: the project is before the first, the day after the last).
fn parse_to(spec: &str) -> Result<AttachTo, ClientError> {
    let (kind, rest) = spec
        .trim()
        .split_once(':')
        .ok_or_else(|| bad_target(spec))?;
    let kind = kind.trim().replace('-', "_");
    if kind == "site_day" {
        let (project, rest) = rest.split_once(':').ok_or_else(|| bad_target(spec))?;
        let (site, day) = rest.rsplit_once(':').ok_or_else(|| bad_target(spec))?;
        return Ok(AttachTo {
            kind,
            id: project.to_owned(),
            site: Some(site.to_owned()),
            day: Some(day.to_owned()),
        });
    }
    Ok(AttachTo {
        kind,
        id: rest.to_owned(),
        site: None,
        day: None,
    })
}

/// `bytes` for a person: `812 KiB`, `1.4 MiB`.
fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.0} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

fn show_photo(v: &PhotoView) {
    let p = &v.photo;
    let a = &p.attached_to;
    let day = match (&a.site, &a.day) {
        (Some(site), Some(day)) => format!(", site {site}, {day}"),
        _ => String::new(),
    };
    println!(
        "{} — photo of {} {}{day} [{}]{}",
        p.id,
        a.kind,
        a.id,
        v.status,
        pending(v.pending)
    );
    println!(
        "  {:<9} {}, {}, sha256 {}; upload {}",
        "bytes",
        p.mime,
        size(p.size),
        &p.sha256[..p.sha256.len().min(12)],
        match (v.uploaded, v.upload_state.as_deref()) {
            (true, _) => "done",
            (false, Some(state)) => state,
            (false, None) => "from another phone",
        }
    );
    match &p.evidence {
        Some(ev) => println!(
            "  {:<9} {} at {}, {} (±{} m, {}{})",
            "taken",
            utc(p.captured_at_ms),
            ev.lat,
            ev.lon,
            ev.accuracy_m,
            ev.provider,
            if ev.mock { ", mocked" } else { "" }
        ),
        None => println!("  {:<9} {}, no location", "taken", utc(p.captured_at_ms)),
    }
    if !p.caption.is_empty() {
        println!("  {:<9} {}", "caption", p.caption);
    }
    if !p.tags.is_empty() {
        println!("  {:<9} {}", "tags", p.tags.join(", "));
    }
    for r in &p.reviews {
        println!(
            "  review    {} by {} at {}{}",
            r.decision,
            r.by,
            utc(r.at_ms),
            if r.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", r.reason)
            }
        );
    }
    for c in &p.comments {
        println!("  comment   {} at {}: {}", c.by, utc(c.at_ms), c.text);
    }
    for c in &v.conflicts {
        println!("  CONFLICT  {}: {}", c.field, c.values.join(" | "));
    }
}

fn show_queue(s: &UploadQueueStatus) {
    println!(
        "{} queued, {} uploading, {} done, {} failed; {} to send",
        s.queued,
        s.uploading,
        s.done,
        s.failed,
        size(s.bytes_pending)
    );
    for i in &s.items {
        println!(
            "  {}  {:<9} {:>9} of {:<9} attempts {}{}",
            &i.sha256[..i.sha256.len().min(12)],
            i.state,
            size(i.bytes_sent),
            size(i.size),
            i.attempts,
            match (&i.last_error, &i.last_error_code) {
                (Some(m), Some(c)) => format!("  last error: {m} ({c})"),
                _ => String::new(),
            }
        );
    }
}

/// One line for what an upload run did (after a sync too), and why it stopped.
pub fn upload_line(r: &UploadReport) -> String {
    let mut line = format!(
        "photos: {} uploaded ({} sent), {} failed, {} to retry; {} waiting ({})",
        r.completed,
        size(r.bytes_sent),
        r.failed,
        r.errors,
        r.remaining,
        size(r.bytes_pending)
    );
    if let (Some(code), Some(message)) = (&r.stopped_code, &r.stopped_message) {
        line.push_str(&format!("\n  stopped: {message} ({code})"));
    }
    line
}

pub fn photo(client: &FieldsyncClient, cmd: PhotoCmd, json: bool) -> Result<(), ClientError> {
    match cmd {
        PhotoCmd::Add {
            file,
            to,
            caption,
            tags,
            fix,
        } => {
            let to = parse_to(&to)?;
            let fix = fix.fix(client)?;
            let v = client.attach_photo(
                PhotoSource::file(file),
                to,
                fix,
                caption.unwrap_or_default(),
                tags,
            )?;
            out(json, &v, show_photo)
        }
        PhotoCmd::List => out(json, &client.list_photos()?, |v: &Vec<PhotoView>| {
            for p in v {
                show_photo(p)
            }
        }),
        PhotoCmd::Show { id } => out(json, &client.get_photo(id)?, show_photo),
        PhotoCmd::Status => out(json, &client.upload_status()?, show_queue),
        PhotoCmd::Comment { id, text } => out(json, &client.comment_photo(id, text)?, show_photo),
        PhotoCmd::Review {
            id,
            approve: _,
            reject,
            retake,
        } => {
            let (decision, reason) = match (reject, retake) {
                (Some(r), _) => ("rejected", r),
                (None, Some(r)) => ("retake", r),
                (None, None) => ("approved", String::new()),
            };
            out(
                json,
                &client.review_photo(id, decision.into(), reason)?,
                show_photo,
            )
        }
        PhotoCmd::Upload(a) => out(json, &client.upload_photos(a.max_bytes)?, |r| {
            println!("{}", upload_line(r))
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_with_their_parts() {
        let t = parse_to("visit:abc").expect("visit");
        assert_eq!(
            (t.kind.as_str(), t.id.as_str(), t.site),
            ("visit", "abc", None)
        );
        let t = parse_to("site-day:p1:Yard: North:2026-11-24").expect("site day");
        assert_eq!(t.kind, "site_day");
        assert_eq!(t.id, "p1");
        assert_eq!(t.site.as_deref(), Some("Yard: North"));
        assert_eq!(t.day.as_deref(), Some("2026-11-24"));
        for bad in ["visit", "site-day:p1", "site-day:p1:Yard"] {
            assert_eq!(parse_to(bad).expect_err(bad).code(), "invalid_argument");
        }
    }
}
