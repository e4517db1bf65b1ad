//! The customer record: who we sell to or serve, owned by one rep at a time.

use super::{GeoPoint, parse_user};
use crate::docio::{self, Obj, Reader};
use crate::error::Rejection;
use crate::ids::{DocId, UserId};
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

choice_enum!(
    /// A company or a private person.
    CustomerKind, "customer kind" { Company => "company", Person => "person" }
);
choice_enum!(
    /// How important the customer is; tenants use either key/ordinary or gold/silver/bronze.
    Tier, "tier" { Key => "key", Ordinary => "ordinary", Gold => "gold", Silver => "silver", Bronze => "bronze" }
);
choice_enum!(
    /// Where the customer is in its life with us.
    Lifecycle, "lifecycle" { Prospect => "prospect", Active => "active", Churned => "churned" }
);

/// A person to talk to at the customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Stable id (UUID string) so two phones can edit different contacts at once.
    pub id: String,
    pub name: String,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A customer record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: DocId,
    pub name: String,
    pub customer_kind: CustomerKind,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub location: Option<GeoPoint>,
    /// How far from `location` a visit check-in counts as on site (metres, 100-3000); the
    /// tenant's default when absent.
    pub visit_radius_m: Option<f64>,
    pub tier: Option<Tier>,
    pub lifecycle: Lifecycle,
    /// The rep the customer is assigned to, or [`crate::access::POOL`] while it waits in the
    /// tenant's shared pool for a manager to hand it out.
    pub owner: UserId,
    /// Who created the record; never changes.
    pub created_by: UserId,
    pub contacts: Vec<Contact>,
    /// Sorted, unique.
    pub tags: Vec<String>,
    /// Free text; concurrent edits merge character by character.
    pub notes: String,
}

impl Customer {
    /// A new prospect company owned by its creator.
    pub fn new(name: impl Into<String>, creator: UserId) -> Self {
        Customer {
            id: DocId::new(),
            name: name.into(),
            customer_kind: CustomerKind::Company,
            phone: None,
            email: None,
            address: None,
            location: None,
            visit_radius_m: None,
            tier: None,
            lifecycle: Lifecycle::Prospect,
            owner: creator,
            created_by: creator,
            contacts: Vec::new(),
            tags: Vec::new(),
            notes: String::new(),
        }
    }

    /// Whether the customer is in the shared pool (owned by no rep).
    pub fn is_pooled(&self) -> bool {
        crate::access::is_pool(self.owner)
    }

    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        root: &Obj<'_>,
        id: DocId,
    ) -> Result<Self, Rejection> {
        let lat = r.opt_f64(root, "lat", "lat")?;
        let lon = r.opt_f64(root, "lon", "lon")?;
        let location = match (lat, lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
            (None, None) => None,
            _ => {
                return Err(Rejection::new(
                    "incomplete_location",
                    "A location needs both latitude and longitude.",
                ));
            }
        };
        let mut contacts = Vec::new();
        if let Some(map) = r.opt_obj(root, "contacts", "contacts", ObjType::Map)? {
            for key in r.keys(&map) {
                let path = format!("contacts.{key}");
                let Some(c) = r.opt_obj(&map, &key, &path, ObjType::Map)? else {
                    continue;
                };
                contacts.push(Contact {
                    id: key.clone(),
                    name: r.req_str(&c, "name", &format!("{path}.name"))?,
                    title: r.opt_str(&c, "title", &format!("{path}.title"))?,
                    phone: r.opt_str(&c, "phone", &format!("{path}.phone"))?,
                    email: r.opt_str(&c, "email", &format!("{path}.email"))?,
                });
            }
        }
        let tags = match r.opt_obj(root, "tags", "tags", ObjType::Map)? {
            Some(map) => r.keys(&map),
            None => Vec::new(),
        };
        Ok(Customer {
            id,
            name: r.req_str(root, "name", "name")?,
            customer_kind: r
                .opt_str(root, "customer_kind", "customer_kind")?
                .as_deref()
                .unwrap_or("company")
                .parse()?,
            phone: r.opt_str(root, "phone", "phone")?,
            email: r.opt_str(root, "email", "email")?,
            address: r.opt_str(root, "address", "address")?,
            location,
            visit_radius_m: r.opt_f64(root, "visit_radius_m", "visit_radius_m")?,
            tier: r
                .opt_str(root, "tier", "tier")?
                .map(|t| t.parse())
                .transpose()?,
            lifecycle: r
                .opt_str(root, "lifecycle", "lifecycle")?
                .as_deref()
                .unwrap_or("prospect")
                .parse()?,
            owner: parse_user(&r.req_str(root, "owner", "owner")?, "owner")?,
            created_by: parse_user(&r.req_str(root, "created_by", "created_by")?, "created_by")?,
            contacts,
            tags,
            notes: r.opt_str(root, "notes", "notes")?.unwrap_or_default(),
        })
    }

    pub(crate) fn write_fields<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        docio::put(tx, &ROOT, "name", self.name.as_str())?;
        docio::put(tx, &ROOT, "customer_kind", self.customer_kind.as_str())?;
        docio::put_opt(tx, &ROOT, "phone", self.phone.as_deref())?;
        docio::put_opt(tx, &ROOT, "email", self.email.as_deref())?;
        docio::put_opt(tx, &ROOT, "address", self.address.as_deref())?;
        docio::put_opt(tx, &ROOT, "lat", self.location.map(|l| l.lat))?;
        docio::put_opt(tx, &ROOT, "lon", self.location.map(|l| l.lon))?;
        docio::put_opt(tx, &ROOT, "visit_radius_m", self.visit_radius_m)?;
        docio::put_opt(tx, &ROOT, "tier", self.tier.map(|t| t.as_str()))?;
        docio::put(tx, &ROOT, "lifecycle", self.lifecycle.as_str())?;
        docio::put(tx, &ROOT, "owner", self.owner.as_string())?;
        docio::put(tx, &ROOT, "created_by", self.created_by.as_string())?;
        let contacts = docio::ensure_map(tx, &ROOT, "contacts")?;
        let ids: Vec<String> = self.contacts.iter().map(|c| c.id.clone()).collect();
        docio::retain_keys(tx, &contacts, &ids)?;
        for c in &self.contacts {
            let obj = docio::ensure_map(tx, &contacts, &c.id)?;
            docio::put(tx, &obj, "name", c.name.as_str())?;
            docio::put_opt(tx, &obj, "title", c.title.as_deref())?;
            docio::put_opt(tx, &obj, "phone", c.phone.as_deref())?;
            docio::put_opt(tx, &obj, "email", c.email.as_deref())?;
        }
        let tags = docio::ensure_map(tx, &ROOT, "tags")?;
        docio::retain_keys(tx, &tags, &self.tags)?;
        for t in &self.tags {
            docio::put(tx, &tags, t, true)?;
        }
        docio::put_text(tx, &ROOT, "notes", &self.notes)
    }
}
