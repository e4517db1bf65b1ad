//! The reason a change or a request is refused: a stable machine-readable code and a sentence a
//! person understands. Phones show the sentence; scripts switch on the code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why something was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Stable, snake_case, never reworded (e.g. `invalid_latitude`).
    pub code: String,
    /// One sentence for a person.
    pub message: String,
}

impl Rejection {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Rejection {}
