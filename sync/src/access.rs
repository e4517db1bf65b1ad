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

#[cfg(test)]
mod pool_tests {
    //! The shared pool: who reads it, and which owner moves the rules allow around it.
    use super::*;
    use crate::record::{Customer, Record};
    use crate::rules::check_change;
    use std::collections::HashMap;

    struct Dir(HashMap<UserId, (Role, Option<UserId>)>);

    impl Directory for Dir {
        fn active_role(&self, user: UserId) -> Option<Role> {
            self.0.get(&user).map(|u| u.0)
        }
        fn manager_of(&self, user: UserId) -> Option<UserId> {
            self.0.get(&user).and_then(|u| u.1)
        }
    }

    struct World {
        dir: Dir,
        admin: Caller,
        boss1: Caller,
        boss2: Caller,
        rep1: Caller,
        rep2: Caller,
    }

    /// An admin, two managers, rep1 reporting to boss1 and rep2 to boss2.
    fn world() -> World {
        let tenant = TenantId::new();
        let mk = |role| Caller {
            tenant,
            user: UserId::new(),
            role,
        };
        let (admin, boss1, boss2) = (mk(Role::Admin), mk(Role::Manager), mk(Role::Manager));
        let (rep1, rep2) = (mk(Role::FieldRep), mk(Role::FieldRep));
        let mut m = HashMap::new();
        m.insert(admin.user, (Role::Admin, None));
        m.insert(boss1.user, (Role::Manager, None));
        m.insert(boss2.user, (Role::Manager, None));
        m.insert(rep1.user, (Role::FieldRep, Some(boss1.user)));
        m.insert(rep2.user, (Role::FieldRep, Some(boss2.user)));
        World {
            dir: Dir(m),
            admin,
            boss1,
            boss2,
            rep1,
            rep2,
        }
    }

    /// The code of the rule's refusal when `by` moves a customer from `from` to `to`; `None`
    /// when allowed.
    fn moving(w: &World, by: &Caller, from: UserId, to: UserId) -> Option<String> {
        let mut before = Customer::new("Pooled Ltd", w.rep1.user);
        before.owner = from;
        let mut after = before.clone();
        after.owner = to;
        check_change(
            before.id,
            Some(&Record::Customer(before)),
            &Record::Customer(after),
            by,
            &w.dir,
        )
        .err()
        .map(|e| e.code)
    }

    #[test]
    fn managers_and_admins_read_the_pool_and_reps_do_not() {
        let w = world();
        assert!(can_read(&w.boss1, &[POOL], &w.dir));
        assert!(can_read(&w.boss2, &[POOL], &w.dir));
        assert!(can_read(&w.admin, &[POOL], &w.dir));
        assert!(!can_read(&w.rep1, &[POOL], &w.dir));
        assert!(is_pool(POOL) && !is_pool(w.rep1.user));
    }

    #[test]
    fn only_an_admin_puts_customers_into_the_pool() {
        let w = world();
        assert_eq!(moving(&w, &w.admin, w.rep1.user, POOL), None);
        assert_eq!(
            moving(&w, &w.boss1, w.rep1.user, POOL).as_deref(),
            Some("pool_not_allowed")
        );
        assert_eq!(
            moving(&w, &w.rep1, w.rep1.user, POOL).as_deref(),
            Some("pool_not_allowed")
        );
    }

    #[test]
    fn a_manager_hands_pooled_customers_to_their_own_team_only() {
        let w = world();
        assert_eq!(moving(&w, &w.boss1, POOL, w.rep1.user), None);
        assert_eq!(moving(&w, &w.boss1, POOL, w.boss1.user), None);
        assert_eq!(
            moving(&w, &w.boss1, POOL, w.rep2.user).as_deref(),
            Some("owner_not_allowed")
        );
        assert_eq!(moving(&w, &w.admin, POOL, w.rep2.user), None);
        // A rep cannot take one from the pool, not even for themselves.
        assert_eq!(
            moving(&w, &w.rep1, POOL, w.rep1.user).as_deref(),
            Some("forbidden")
        );
        // Nobody hands a pooled customer to someone who is not an active user.
        assert_eq!(
            moving(&w, &w.admin, POOL, UserId::new()).as_deref(),
            Some("unknown_owner")
        );
    }
}
