//! `fieldsync serve --demo`: a demo tenant with one user of every role, a few customers and
//! projects, shifts and assignments, and today's site diary in Chengdu, written through the
//! same push path phones use.

use crate::app::{self, AdminError};
use crate::store::{PushItem, Store};
use automerge::ActorId;
use fieldsync_sync::attendance::{Calendar, Shift};
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::record::customer::{Contact, Lifecycle, Tier};
use fieldsync_sync::record::project::{
    Geofence, Member, Milestone, MilestoneStatus, ProjectRole, ProjectStatus, Site,
};
use fieldsync_sync::{
    Caller, Customer, DeviceId, Diary, DiaryItem, GeoPoint, Project, Record, Role,
};

pub const DEMO_TENANT: &str = "demo";
pub const DEMO_PASSWORD: &str = "fieldsync-demo";

/// The demo accounts: (email, role, manager email).
pub const DEMO_USERS: [(&str, Role, Option<&str>); 6] = [
    ("admin@demo.test", Role::Admin, None),
    ("manager@demo.test", Role::Manager, None),
    ("rep1@demo.test", Role::FieldRep, Some("manager@demo.test")),
    ("rep2@demo.test", Role::FieldRep, Some("manager@demo.test")),
    ("site@demo.test", Role::SiteManager, None),
    ("hr@demo.test", Role::Hr, None),
];

fn changes(record: &Record) -> Result<Vec<Vec<u8>>, AdminError> {
    let doc = record
        .to_new_doc(ActorId::random())
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(doc
        .get_changes(&[])
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect())
}

async fn push_as(
    store: &dyn Store,
    caller: &Caller,
    records: Vec<Record>,
) -> Result<(), AdminError> {
    let mut items = Vec::new();
    for r in records {
        items.push(PushItem::Apply(Incoming {
            doc_id: r.id(),
            kind: r.kind(),
            changes: changes(&r)?,
        }));
    }
    let out = store
        .push(caller, DeviceId::new(), uuid::Uuid::now_v7(), items)
        .await?;
    for r in out.response.results {
        if let fieldsync_sync::protocol::PushResult::Rejected { error, .. } = r {
            return Err(AdminError::Invalid(format!(
                "demo record rejected: {error}"
            )));
        }
    }
    Ok(())
}

/// Seeds the demo tenant unless it exists. Returns whether it seeded.
pub async fn seed(store: &dyn Store) -> Result<bool, AdminError> {
    if store.tenant_by_slug(DEMO_TENANT).await?.is_some() {
        return Ok(false);
    }
    let tenant = app::create_tenant(store, DEMO_TENANT, Some("Demo Field Services Ltd")).await?;
    let mut ids = std::collections::HashMap::new();
    for (email, role, manager) in DEMO_USERS {
        let u = app::create_user(store, tenant.id, email, DEMO_PASSWORD, role, manager).await?;
        ids.insert(email, u.id);
    }
    let who = |email: &str, role| Caller {
        tenant: tenant.id,
        user: ids[email],
        role,
    };
    let rep1 = ids["rep1@demo.test"];
    let rep2 = ids["rep2@demo.test"];
    let site = ids["site@demo.test"];

    let mut acme = Customer::new("Acme Trading Co.", rep1);
    acme.phone = Some("+86 28 8555 0101".into());
    acme.address = Some("1 Renmin South Road, Chengdu".into());
    acme.location = Some(GeoPoint {
        lat: 30.6586,
        lon: 104.0648,
    });
    acme.tier = Some(Tier::Gold);
    acme.lifecycle = Lifecycle::Active;
    acme.contacts = vec![Contact {
        id: "buyer".into(),
        name: "Li Wei".into(),
        title: Some("Purchasing manager".into()),
        phone: Some("+86 139 0000 1111".into()),
        email: Some("li.wei@acme.example".into()),
    }];
    acme.tags = vec!["hvac".into()];
    acme.notes = "Prefers visits before 11:00.".into();
    let mut panda = Customer::new("Panda Hotels Group", rep1);
    panda.location = Some(GeoPoint {
        lat: 30.5728,
        lon: 104.0668,
    });
    panda.tier = Some(Tier::Silver);
    push_as(
        store,
        &who("rep1@demo.test", Role::FieldRep),
        vec![Record::Customer(acme.clone()), Record::Customer(panda)],
    )
    .await?;

    let mut spree = Customer::new("Spree Bau GmbH", rep2);
    spree.location = Some(GeoPoint {
        lat: 52.5200,
        lon: 13.4050,
    });
    spree.address = Some("Alexanderplatz 1, Berlin".into());
    spree.lifecycle = Lifecycle::Prospect;
    push_as(
        store,
        &who("rep2@demo.test", Role::FieldRep),
        vec![Record::Customer(spree.clone())],
    )
    .await?;

    let mut tower = Project::new("Acme HQ fit-out", site);
    tower.customer = Some(acme.id);
    tower.code = Some("ACME-2026-01".into());
    tower.status = ProjectStatus::Active;
    tower.sites = vec![Site {
        id: "hq".into(),
        name: "Acme HQ, Tower B".into(),
        address: Some("8 Tianfu Avenue, Chengdu".into()),
        timezone: "Asia/Shanghai".into(),
        geofence: Some(Geofence::Circle {
            center: GeoPoint {
                lat: 30.5702,
                lon: 104.0638,
            },
            radius_m: 200.0,
        }),
    }];
    tower.members = vec![
        Member {
            user: site,
            role: ProjectRole::SiteManager,
        },
        Member {
            user: rep1,
            role: ProjectRole::Viewer,
        },
    ];
    tower.milestones = vec![Milestone {
        id: "handover".into(),
        name: "Handover".into(),
        due: Some("2027-03-31".into()),
        status: MilestoneStatus::Pending,
    }];
    let tower_id = tower.id;
    push_as(
        store,
        &who("site@demo.test", Role::SiteManager),
        vec![Record::Project(tower)],
    )
    .await?;

    // A second project abroad: another time zone, and a polygon geofence.
    let mut yard = Project::new("Spree Bau depot refit", site);
    yard.customer = Some(spree.id);
    yard.code = Some("SPREE-2027-01".into());
    yard.status = ProjectStatus::Planned;
    yard.sites = vec![Site {
        id: "depot".into(),
        name: "Spree Bau depot".into(),
        address: Some("Holzmarktstraße 25, Berlin".into()),
        timezone: "Europe/Berlin".into(),
        geofence: Some(Geofence::Polygon {
            points: vec![
                GeoPoint {
                    lat: 52.5108,
                    lon: 13.4253,
                },
                GeoPoint {
                    lat: 52.5117,
                    lon: 13.4281,
                },
                GeoPoint {
                    lat: 52.5101,
                    lon: 13.4296,
                },
                GeoPoint {
                    lat: 52.5093,
                    lon: 13.4268,
                },
            ],
        }),
    }];
    yard.members = vec![
        Member {
            user: site,
            role: ProjectRole::SiteManager,
        },
        Member {
            user: rep2,
            role: ProjectRole::Crew,
        },
    ];
    yard.milestones = vec![Milestone {
        id: "start".into(),
        name: "Site handed over to us".into(),
        due: Some("2027-01-15".into()),
        status: MilestoneStatus::Pending,
    }];
    let yard_id = yard.id;
    push_as(
        store,
        &who("site@demo.test", Role::SiteManager),
        vec![Record::Project(yard)],
    )
    .await?;

    // Today's site diary at the Chengdu HQ, begun by the site manager: started from the day's
    // shared first change, as every phone starts it.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let now = crate::store::now_ms();
    let item = |id: &str, text: &str, quantity: Option<f64>, unit: Option<&str>| DiaryItem {
        id: id.into(),
        by: site,
        at_ms: now,
        text: text.into(),
        quantity,
        unit: unit.map(str::to_owned),
        note: String::new(),
        severity: None,
    };
    let mut diary = Diary::new(tower_id, "hq", today.clone());
    diary.weather = "Overcast, light wind".into();
    diary.temperature_c = Some(12.0);
    diary.work =
        "Ceiling grid on level 3, east wing. Sprinkler heads fitted in rooms 301-306.".into();
    diary.materials = vec![item(
        "tiles",
        "Ceiling tiles 600x600",
        Some(120.0),
        Some("pcs"),
    )];
    diary.equipment = vec![item("lift", "Scissor lift", Some(6.0), Some("h"))];
    diary.visitors = vec![item(
        "inspector",
        "Fire inspector, Chengdu Fire Bureau",
        None,
        None,
    )];
    let mut doc =
        Diary::genesis(tower_id, "hq", &today).map_err(|e| AdminError::Invalid(e.to_string()))?;
    doc.set_actor(ActorId::random());
    let mut tx = doc.transaction();
    Record::Diary(diary.clone())
        .write(&mut tx)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    tx.commit();
    let out = store
        .push(
            &who("site@demo.test", Role::SiteManager),
            DeviceId::new(),
            uuid::Uuid::now_v7(),
            vec![PushItem::Apply(Incoming {
                doc_id: diary.id,
                kind: fieldsync_sync::RecordKind::Diary,
                changes: doc
                    .get_changes(&[])
                    .into_iter()
                    .map(|c| c.raw_bytes().to_vec())
                    .collect(),
            })],
        )
        .await?;
    if let Some(fieldsync_sync::protocol::PushResult::Rejected { error, .. }) =
        out.response.results.into_iter().next()
    {
        return Err(AdminError::Invalid(format!("demo diary rejected: {error}")));
    }

    // Attendance: a day shift in Chengdu, a night shift in Berlin, and who works where.
    let shift = |name: &str, start_min, end_min| Shift {
        name: name.into(),
        start_min,
        end_min,
        grace_late_min: 5,
        grace_early_min: 5,
        serious_late_min: 30,
        absent_late_min: 120,
        window_before_min: 120,
        window_after_min: 240,
        break_min: 60,
        required_min: 480,
    };
    let day = store
        .create_shift(tenant.id, &shift("Day 09:00-18:00", 540, 1080))
        .await?;
    let night = store
        .create_shift(tenant.id, &shift("Night 22:00-07:00", 1320, 420))
        .await?;
    let date = |s: &str| {
        s.parse::<chrono::NaiveDate>()
            .map_err(|e| AdminError::Invalid(e.to_string()))
    };
    let mut cn = Calendar::monday_to_friday();
    cn.holidays
        .insert(date("2027-01-01")?, "New Year's Day".into());
    let cn = store
        .create_calendar(tenant.id, "China office", &cn)
        .await?;
    let mut de = Calendar::monday_to_friday();
    de.holidays
        .insert(date("2026-12-25")?, "Christmas Day".into());
    de.holidays.insert(date("2026-12-26")?, "Boxing Day".into());
    let de = store.create_calendar(tenant.id, "Germany", &de).await?;
    store
        .assign_site(tenant.id, rep1, tower_id, "hq", &day.id, &cn.id, None)
        .await?;
    store
        .assign_site(tenant.id, site, tower_id, "hq", &day.id, &cn.id, None)
        .await?;
    store
        .assign_site(tenant.id, rep2, yard_id, "depot", &night.id, &de.id, None)
        .await?;
    Ok(true)
}

/// How to log in, for the console.
pub fn instructions(url: &str) -> String {
    let mut s = format!(
        "Demo tenant '{DEMO_TENANT}' is ready at {url}. Every demo account's password is '{DEMO_PASSWORD}':\n"
    );
    for (email, role, _) in DEMO_USERS {
        s.push_str(&format!("  {email:<20} {role}\n"));
    }
    s.push_str(&format!(
        "Try a phone:\n  fieldsync-device --dir /tmp/phone1 login --server {url} --tenant {DEMO_TENANT} --email rep1@demo.test --password {DEMO_PASSWORD}\n  fieldsync-device --dir /tmp/phone1 sync && fieldsync-device --dir /tmp/phone1 customer list\n"
    ));
    s
}
