//! Roles and who may read or write which record. The server enforces these rules; the phone
//! uses the same ones to grey out what the person may not do.

use crate::error::Rejection;
use crate::ids::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's role in their tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works their own customers.
    FieldRep,
    /// Sees and edits the customers of the team they lead.
    Manager,
    /// Runs the projects they are site manager of.
    SiteManager,
    /// Reads all attendance (later issues); no customer access of its own.
    Hr,
    /// The whole tenant.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::FieldRep,
        Role::Manager,
        Role::SiteManager,
        Role::Hr,
        Role::Admin,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::FieldRep => "field_rep",
            Role::Manager => "manager",
            Role::SiteManager => "site_manager",
            Role::Hr => "hr",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Rejection;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Rejection::new(
                "invalid_role",
                format!("'{s}' is not a role; use one of field_rep, manager, site_manager, hr, admin"),
            )
        })
    }
}

/// The reserved principal of the tenant's shared customer pool: a customer whose `owner` is
/// `POOL` belongs to no rep. Every manager and admin of the tenant reads (and may hand out)
/// pooled customers; reps do not. It is the nil UUID, which no user id (UUIDv7) can be.
pub const POOL: UserId = UserId(uuid::Uuid::nil());

/// Whether `user` is the shared pool rather than a person.
pub fn is_pool(user: UserId) -> bool {
    user == POOL
}

/// Who is making a request, as established from their access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
}

/// What the rules need to know about the tenant's people. The server answers from its tables;
/// tests answer from a map.
pub trait Directory {
    /// The role of an active (not disabled) user of the caller's tenant, `None` otherwise.
    fn active_role(&self, user: UserId) -> Option<Role>;
    /// The manager a user reports to.
    fn manager_of(&self, user: UserId) -> Option<UserId>;

    /// The members of a project (any project role), for records that belong to a project
    /// (its photos). Directories that do not know projects answer none.
    fn project_members(&self, _project: crate::ids::DocId) -> Vec<UserId> {
        Vec::new()
    }

    /// A member's role in a project (site manager, crew, viewer). Directories that do not know
    /// projects answer none.
    fn project_role(
        &self,
        _project: crate::ids::DocId,
        _user: UserId,
    ) -> Option<crate::record::project::ProjectRole> {
        None
    }

    /// The active managers of the tenant: they read the shared pool ([`POOL`]), so they are
    /// granted a customer that enters it. Directories that do not know them answer none.
    fn pool_readers(&self) -> Vec<UserId> {
        Vec::new()
    }

    /// Whether `user` is `lead` or reports to `lead`.
    fn is_self_or_report(&self, lead: UserId, user: UserId) -> bool {
        user == lead || self.manager_of(user) == Some(lead)
    }
}

/// Whether `caller` may read a record whose principals (owner, project members, creator) are
/// `principals`. Admins read everything; anyone reads what they are a principal of; a manager
/// reads what their team members are principals of, and the shared pool ([`POOL`]).
pub fn can_read(caller: &Caller, principals: &[UserId], dir: &dyn Directory) -> bool {
    caller.role == Role::Admin
        || principals.contains(&caller.user)
        || (caller.role == Role::Manager && principals.contains(&POOL))
        || (caller.role == Role::Manager
            && principals
                .iter()
                .any(|p| dir.manager_of(*p) == Some(caller.user)))
}
