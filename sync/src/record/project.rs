//! The project record: work done for a customer at one or more sites, by a crew of members.

use super::{GeoPoint, parse_user};
use crate::docio::{self, Obj, Reader};
use crate::error::Rejection;
use crate::ids::{DocId, UserId};
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjId, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

choice_enum!(
    /// Where a project stands.
    ProjectStatus, "project status" {
        Planned => "planned", Active => "active", OnHold => "on_hold", Completed => "completed", Cancelled => "cancelled"
    }
);
choice_enum!(
    /// A member's part in a project.
    ProjectRole, "project role" { SiteManager => "site_manager", Crew => "crew", Viewer => "viewer" }
);
choice_enum!(
    /// A milestone's state.
    MilestoneStatus, "milestone status" { Pending => "pending", Done => "done", Missed => "missed" }
);

/// The area a site covers, for attendance and photo checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Geofence {
    Circle { center: GeoPoint, radius_m: f64 },
    Polygon { points: Vec<GeoPoint> },
}

/// A place where the project's work happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub address: Option<String>,
    /// IANA time zone name, e.g. `Asia/Shanghai`.
    pub timezone: String,
    pub geofence: Option<Geofence>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub user: UserId,
    pub role: ProjectRole,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    pub id: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub due: Option<String>,
    pub status: MilestoneStatus,
}

/// A project record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: DocId,
    pub customer: Option<DocId>,
    pub name: String,
    /// The company's own project code; fixed once set.
    pub code: Option<String>,
    pub status: ProjectStatus,
    pub created_by: UserId,
    pub sites: Vec<Site>,
    pub members: Vec<Member>,
    pub milestones: Vec<Milestone>,
}

impl Project {
    pub fn new(name: impl Into<String>, creator: UserId) -> Self {
        Project {
            id: DocId::new(),
            customer: None,
            name: name.into(),
            code: None,
            status: ProjectStatus::Planned,
            created_by: creator,
            sites: Vec::new(),
            members: Vec::new(),
            milestones: Vec::new(),
        }
    }

    /// The role `user` holds in this project, if a member.
    pub fn role_of(&self, user: UserId) -> Option<ProjectRole> {
        self.members.iter().find(|m| m.user == user).map(|m| m.role)
    }

    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        root: &Obj<'_>,
        id: DocId,
    ) -> Result<Self, Rejection> {
        let customer = r
            .opt_str(root, "customer", "customer")?
            .map(|s| {
                s.parse::<DocId>().map_err(|_| {
                    Rejection::new("invalid_id", "Field 'customer' must be a record id (UUID).")
                })
            })
            .transpose()?;
        let mut sites = Vec::new();
        if let Some(map) = r.opt_obj(root, "sites", "sites", ObjType::Map)? {
            for key in r.keys(&map) {
                let path = format!("sites.{key}");
                let Some(s) = r.opt_obj(&map, &key, &path, ObjType::Map)? else {
                    continue;
                };
                sites.push(Site {
                    id: key.clone(),
                    name: r.req_str(&s, "name", &format!("{path}.name"))?,
                    address: r.opt_str(&s, "address", &format!("{path}.address"))?,
                    timezone: r.req_str(&s, "timezone", &format!("{path}.timezone"))?,
                    geofence: read_fence(r, &s, &format!("{path}.geofence"))?,
                });
            }
        }
        let mut members = Vec::new();
        if let Some(map) = r.opt_obj(root, "members", "members", ObjType::Map)? {
            for key in r.keys(&map) {
                let path = format!("members.{key}");
                let role = r.req_str(&map, &key, &path)?;
                members.push(Member {
                    user: parse_user(&key, &path)?,
                    role: role.parse()?,
                });
            }
        }
        let mut milestones = Vec::new();
        if let Some(map) = r.opt_obj(root, "milestones", "milestones", ObjType::Map)? {
            for key in r.keys(&map) {
                let path = format!("milestones.{key}");
                let Some(m) = r.opt_obj(&map, &key, &path, ObjType::Map)? else {
                    continue;
                };
                milestones.push(Milestone {
                    id: key.clone(),
                    name: r.req_str(&m, "name", &format!("{path}.name"))?,
                    due: r.opt_str(&m, "due", &format!("{path}.due"))?,
                    status: r
                        .opt_str(&m, "status", &format!("{path}.status"))?
                        .as_deref()
                        .unwrap_or("pending")
                        .parse()?,
                });
            }
        }
        Ok(Project {
            id,
            customer,
            name: r.req_str(root, "name", "name")?,
            code: r.opt_str(root, "code", "code")?,
            status: r
                .opt_str(root, "status", "status")?
                .as_deref()
                .unwrap_or("planned")
                .parse()?,
            created_by: parse_user(&r.req_str(root, "created_by", "created_by")?, "created_by")?,
            sites,
            members,
            milestones,
        })
    }

    pub(crate) fn write_fields<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        docio::put_opt(tx, &ROOT, "customer", self.customer.map(|c| c.as_string()))?;
        docio::put(tx, &ROOT, "name", self.name.as_str())?;
        docio::put_opt(tx, &ROOT, "code", self.code.as_deref())?;
        docio::put(tx, &ROOT, "status", self.status.as_str())?;
        docio::put(tx, &ROOT, "created_by", self.created_by.as_string())?;

        let sites = docio::ensure_map(tx, &ROOT, "sites")?;
        let ids: Vec<String> = self.sites.iter().map(|s| s.id.clone()).collect();
        docio::retain_keys(tx, &sites, &ids)?;
        for s in &self.sites {
            let obj = docio::ensure_map(tx, &sites, &s.id)?;
            docio::put(tx, &obj, "name", s.name.as_str())?;
            docio::put_opt(tx, &obj, "address", s.address.as_deref())?;
            docio::put(tx, &obj, "timezone", s.timezone.as_str())?;
            write_fence(tx, &obj, s.geofence.as_ref())?;
        }

        let members = docio::ensure_map(tx, &ROOT, "members")?;
        let ids: Vec<String> = self.members.iter().map(|m| m.user.as_string()).collect();
        docio::retain_keys(tx, &members, &ids)?;
        for m in &self.members {
            docio::put(tx, &members, &m.user.as_string(), m.role.as_str())?;
        }

        let milestones = docio::ensure_map(tx, &ROOT, "milestones")?;
        let ids: Vec<String> = self.milestones.iter().map(|m| m.id.clone()).collect();
        docio::retain_keys(tx, &milestones, &ids)?;
        for m in &self.milestones {
            let obj = docio::ensure_map(tx, &milestones, &m.id)?;
            docio::put(tx, &obj, "name", m.name.as_str())?;
            docio::put_opt(tx, &obj, "due", m.due.as_deref())?;
            docio::put(tx, &obj, "status", m.status.as_str())?;
        }
        Ok(())
    }
}

fn read_fence<D: ReadDoc>(
    r: &Reader<'_, D>,
    site: &Obj<'_>,
    path: &str,
) -> Result<Option<Geofence>, Rejection> {
    let Some(f) = r.opt_obj(site, "geofence", path, ObjType::Map)? else {
        return Ok(None);
    };
    let shape = r.req_str(&f, "shape", &format!("{path}.shape"))?;
    match shape.as_str() {
        "circle" => {
            let lat = r.opt_f64(&f, "lat", &format!("{path}.lat"))?;
            let lon = r.opt_f64(&f, "lon", &format!("{path}.lon"))?;
            let radius = r.opt_f64(&f, "radius_m", &format!("{path}.radius_m"))?;
            match (lat, lon, radius) {
                (Some(lat), Some(lon), Some(radius_m)) => Ok(Some(Geofence::Circle {
                    center: GeoPoint { lat, lon },
                    radius_m,
                })),
                _ => Err(Rejection::new(
                    "invalid_geofence",
                    format!("The circle geofence '{path}' needs lat, lon and radius_m."),
                )),
            }
        }
        "polygon" => {
            let Some(list) = r.opt_obj(&f, "points", &format!("{path}.points"), ObjType::List)?
            else {
                return Err(Rejection::new(
                    "invalid_geofence",
                    format!("The polygon geofence '{path}' has no points."),
                ));
            };
            let mut points = Vec::new();
            for (i, p) in r
                .list_maps(&list, &format!("{path}.points"))?
                .into_iter()
                .enumerate()
            {
                let pp = format!("{path}.points[{i}]");
                match (
                    r.opt_f64(&p, "lat", &format!("{pp}.lat"))?,
                    r.opt_f64(&p, "lon", &format!("{pp}.lon"))?,
                ) {
                    (Some(lat), Some(lon)) => points.push(GeoPoint { lat, lon }),
                    _ => {
                        return Err(Rejection::new(
                            "invalid_geofence",
                            format!("Point '{pp}' needs lat and lon."),
                        ));
                    }
                }
            }
            Ok(Some(Geofence::Polygon { points }))
        }
        other => Err(Rejection::new(
            "invalid_geofence",
            format!("'{other}' is not a geofence shape; use circle or polygon."),
        )),
    }
}

fn write_fence<T: Transactable>(
    tx: &mut T,
    site: &ObjId,
    fence: Option<&Geofence>,
) -> Result<(), AutomergeError> {
    // A geofence is replaced as a whole when it changes: half of one phone's polygon merged
    // with half of another's would be nobody's fence.
    let current = {
        let r = Reader::new(&*tx);
        r.hydrate(site).ok().and_then(|tree| {
            read_fence(&r, &r.obj(site, &tree), "geofence")
                .ok()
                .flatten()
        })
    };
    if current.as_ref() == fence {
        return Ok(());
    }
    let Some(fence) = fence else {
        tx.delete(site, "geofence")?;
        return Ok(());
    };
    let f = tx.put_object(site, "geofence", ObjType::Map)?;
    match fence {
        Geofence::Circle { center, radius_m } => {
            tx.put(&f, "shape", "circle")?;
            tx.put(&f, "lat", center.lat)?;
            tx.put(&f, "lon", center.lon)?;
            tx.put(&f, "radius_m", *radius_m)?;
        }
        Geofence::Polygon { points } => {
            tx.put(&f, "shape", "polygon")?;
            let list = tx.put_object(&f, "points", ObjType::List)?;
            for (i, p) in points.iter().enumerate() {
                let o = tx.insert_object(&list, i, ObjType::Map)?;
                tx.put(&o, "lat", p.lat)?;
                tx.put(&o, "lon", p.lon)?;
            }
        }
    }
    Ok(())
}
