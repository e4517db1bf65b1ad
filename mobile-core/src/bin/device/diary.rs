//! The site diary commands of `fieldsync-device`: open a project site's day (made from the
//! day's genesis change when the phone lacks it), show and list days, write the weather, the
//! work performed, list items and the crew, sign off and reopen, and see and restore what the
//! server refused; and `customer timeline`.

use crate::field::{out, pending, utc};
use clap::Subcommand;
use fieldsync_mobile_core::{
    ClientError, CrewInput, DiaryRejection, DiaryView, FieldsyncClient, TimelineEntry,
};

#[derive(Subcommand)]
pub enum DiaryCmd {
    /// Open a site's day (the phone makes it if it does not have it).
    Open {
        project: String,
        /// The site's id (or its name, if no other site of the project has it).
        site: String,
        /// YYYY-MM-DD
        day: String,
    },
    /// One diary day.
    Show { id: String },
    /// The diary days on this phone, newest first.
    List {
        #[arg(long)]
        project: Option<String>,
    },
    /// Set the weather ("sunny, light wind") and the temperature.
    Weather {
        id: String,
        weather: String,
        /// °C
        #[arg(long, allow_hyphen_values = true)]
        temp: Option<f64>,
    },
    /// Write the work performed: the whole new text, or --append a paragraph.
    Work {
        id: String,
        text: String,
        /// Add `text` as a new paragraph instead of replacing the text.
        #[arg(long)]
        append: bool,
    },
    /// Add an item to materials, equipment, delays, incidents or visitors.
    Add {
        id: String,
        list: String,
        text: String,
        #[arg(long)]
        quantity: Option<f64>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
        /// Incidents: near_miss, first_aid, injury or serious.
        #[arg(long)]
        severity: Option<String>,
    },
    /// Remove an item.
    Remove {
        id: String,
        list: String,
        item: String,
    },
    /// Add or rewrite a crew entry: staff by --user ID, others by --key (or a new key).
    Crew {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// Punched in at the site but did not work on it.
        #[arg(long)]
        absent: bool,
        #[arg(long)]
        hours: Option<f64>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Remove a crew entry by its key (a staff member's user id).
    CrewRemove { id: String, key: String },
    /// Sign the day off (site managers): it is locked until reopened.
    SignOff {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Reopen a signed-off day (site managers).
    Reopen {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The server's refusals of this phone's changes to the day, with what they removed.
    Rejections { id: String },
    /// Write again what the latest refusal removed (after a reopening).
    Restore { id: String },
    /// Add everyone who punched in at the site that day to the crew (online: asks the server).
    Prefill { id: String },
    /// The photos on this phone that belong to the day (attached to it, or taken on the site).
    Photos { id: String },
}

fn show_diary(v: &DiaryView) {
    let d = &v.diary;
    println!(
        "{} — site diary of {} on {}, project {}{}{}",
        d.id,
        v.site_name.as_deref().unwrap_or(&d.site),
        d.day,
        v.project_name
            .clone()
            .unwrap_or_else(|| d.project.to_string()),
        if v.locked { " [signed off]" } else { "" },
        pending(v.pending)
    );
    if !d.weather.is_empty() || d.temperature_c.is_some() {
        println!(
            "  {:<9} {}{}",
            "weather",
            d.weather,
            d.temperature_c
                .map(|t| format!(", {t} °C"))
                .unwrap_or_default()
        );
    }
    for c in &d.crew {
        println!(
            "  crew      {}{}{}{}",
            c.name,
            if c.present { "" } else { " (not on site)" },
            c.hours.map(|h| format!(", {h} h")).unwrap_or_default(),
            if c.note.is_empty() {
                String::new()
            } else {
                format!(": {}", c.note)
            }
        );
    }
    if !d.work.is_empty() {
        println!("  work");
        for line in d.work.lines() {
            println!("    {line}");
        }
    }
    for list in fieldsync_mobile_core::DIARY_LISTS {
        for i in d.list(list).map(Vec::as_slice).unwrap_or_default() {
            let amount = match (i.quantity, &i.unit) {
                (Some(q), Some(u)) => format!(" {q} {u}"),
                (Some(q), None) => format!(" {q}"),
                _ => String::new(),
            };
            println!(
                "  {:<9} {}{amount}{}{}  [{}]",
                list,
                i.text,
                i.severity.map(|s| format!(" ({s})")).unwrap_or_default(),
                if i.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", i.note)
                },
                i.id
            );
        }
    }
    for e in &d.signoffs {
        println!(
            "  {:<9} #{} by {} at {}{}",
            e.action,
            e.seq,
            e.by,
            utc(e.at_ms),
            if e.note.is_empty() {
                String::new()
            } else {
                format!(": {}", e.note)
            }
        );
    }
    for c in &v.conflicts {
        println!("  CONFLICT  {}: {}", c.field, c.values.join(" | "));
    }
}

fn show_rejections(v: &Vec<DiaryRejection>) {
    for r in v {
        println!("{}: {} ({})", utc(r.at_ms), r.message, r.code);
        if !r.kept.work.is_empty() {
            println!("  kept work: {}", r.kept.work.replace('\n', " / "));
        }
        for k in &r.kept.items {
            println!("  kept {}: {}", k.list, k.item.text);
        }
        for c in &r.kept.crew {
            println!("  kept crew: {}", c.name);
        }
        if let Some(w) = &r.kept.weather {
            println!("  kept weather: {w}");
        }
    }
}

pub fn diary(client: &FieldsyncClient, cmd: DiaryCmd, json: bool) -> Result<(), ClientError> {
    match cmd {
        DiaryCmd::Open { project, site, day } => {
            out(json, &client.open_diary(project, site, day)?, show_diary)
        }
        DiaryCmd::Show { id } => out(json, &client.get_diary(id)?, show_diary),
        DiaryCmd::List { project } => out(
            json,
            &client.list_diaries(project)?,
            |v: &Vec<DiaryView>| {
                for d in v {
                    show_diary(d)
                }
            },
        ),
        DiaryCmd::Weather { id, weather, temp } => out(
            json,
            &client.set_diary_weather(id, weather, temp)?,
            show_diary,
        ),
        DiaryCmd::Work { id, text, append } => {
            let text = if append {
                let mut now = client.get_diary(id.clone())?.diary.work;
                if !now.is_empty() && !now.ends_with('\n') {
                    now.push('\n');
                }
                now + &text
            } else {
                text
            };
            out(json, &client.set_diary_work(id, text)?, show_diary)
        }
        DiaryCmd::Add {
            id,
            list,
            text,
            quantity,
            unit,
            note,
            severity,
        } => {
            let item = client.add_diary_item(id, list, text, quantity, unit, note, severity)?;
            out(json, &serde_json::json!({ "item_id": item }), |_| {
                println!("{item}")
            })
        }
        DiaryCmd::Remove { id, list, item } => {
            out(json, &client.remove_diary_item(id, list, item)?, show_diary)
        }
        DiaryCmd::Crew {
            id,
            name,
            user,
            key,
            absent,
            hours,
            note,
        } => {
            let entry = CrewInput {
                user_id: user,
                key,
                name,
                present: !absent,
                hours,
                note,
            };
            out(json, &client.set_diary_crew(id, entry)?, show_diary)
        }
        DiaryCmd::CrewRemove { id, key } => {
            out(json, &client.remove_diary_crew(id, key)?, show_diary)
        }
        DiaryCmd::SignOff { id, note } => out(json, &client.sign_off_diary(id, note)?, show_diary),
        DiaryCmd::Reopen { id, note } => out(json, &client.reopen_diary(id, note)?, show_diary),
        DiaryCmd::Rejections { id } => out(json, &client.diary_rejections(id)?, show_rejections),
        DiaryCmd::Restore { id } => out(json, &client.restore_diary_kept(id)?, show_diary),
        DiaryCmd::Prefill { id } => out(json, &client.prefill_diary_crew(id)?, show_diary),
        DiaryCmd::Photos { id } => out(json, &client.diary_photos(id)?, |v| {
            for p in v {
                println!(
                    "{}  {}  {}",
                    p.photo.id,
                    p.status,
                    if p.photo.caption.is_empty() {
                        "(no caption)"
                    } else {
                        &p.photo.caption
                    }
                );
            }
        }),
    }
    Ok(())
}

fn show_timeline(v: &Vec<TimelineEntry>) {
    for e in v {
        let when = match (e.at_ms, &e.day) {
            (_, Some(day)) => day.clone(),
            (Some(ms), None) => utc(ms),
            (None, None) => "(undated)".to_owned(),
        };
        println!("{when:<20} {:<10} {}", e.kind, e.title);
        if !e.detail.is_empty() {
            for line in e.detail.lines() {
                println!("{:<31} {line}", "");
            }
        }
    }
}

/// `customer timeline ID`: everything the phone holds about a customer, newest first.
pub fn timeline(client: &FieldsyncClient, id: String, json: bool) -> Result<(), ClientError> {
    out(json, &client.customer_timeline(id)?, show_timeline);
    Ok(())
}
