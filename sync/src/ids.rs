//! Id newtypes. Every id is a UUID; record ids are UUIDv7 made on the phone, so a record can be
//! created offline and still sort by creation time on the server. Ids are parsed at the edge
//! (HTTP, CLI, documents) and travel typed from there on.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The id as the canonical hyphenated lower-case string.
            pub fn as_string(&self) -> String {
                self.0.to_string()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A record (= Automerge document) id.
    DocId
);
id_type!(
    /// A tenant (company) id.
    TenantId
);
id_type!(
    /// A user id.
    UserId
);
id_type!(
    /// A device (one phone's install of the app) id.
    DeviceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings() {
        let id = DocId::new();
        assert_eq!(id.as_string().parse::<DocId>().ok(), Some(id));
        assert!("not-a-uuid".parse::<DocId>().is_err());
    }

    #[test]
    fn new_ids_are_time_ordered_v7() {
        let a = DocId::new();
        let b = DocId::new();
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a <= b);
    }
}
