//! The one error type of the phone library. Every variant carries a stable machine-readable
//! `code` and a `message` a person understands, so the app can switch on the code and show the
//! sentence, and the type maps one-to-one onto a uniffi error enum later.

use fieldsync_sync::Rejection;

/// Everything that can go wrong in a [`crate::FieldsyncClient`] call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The input or the record it would produce breaks a rule (bad latitude, unknown field,
    /// malformed id...). Nothing was stored.
    #[error("{message} ({code})")]
    Invalid { code: String, message: String },
    /// No record with that id is stored on this device.
    #[error("{message} ({code})")]
    NotFound { code: String, message: String },
    /// The call needs a logged-in session and there is none (or it expired for good).
    #[error("{message} ({code})")]
    NotLoggedIn { code: String, message: String },
    /// The server refused the credentials or tokens (`invalid_credentials`, `invalid_token`...).
    #[error("{message} ({code})")]
    Auth { code: String, message: String },
    /// The device was revoked or the account disabled. All local data of the tenant has been
    /// purged; the person must log in again.
    #[error("{message} ({code})")]
    Revoked { code: String, message: String },
    /// The server answered with another error.
    #[error("{message} ({code})")]
    Server {
        code: String,
        message: String,
        status: u16,
    },
    /// The server could not be reached or answered something unreadable. Safe to retry.
    #[error("{message} ({code})")]
    Network { code: String, message: String },
    /// The local database failed.
    #[error("{message} ({code})")]
    Storage { code: String, message: String },
}

impl ClientError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Invalid { code, .. }
            | ClientError::NotFound { code, .. }
            | ClientError::NotLoggedIn { code, .. }
            | ClientError::Auth { code, .. }
            | ClientError::Revoked { code, .. }
            | ClientError::Server { code, .. }
            | ClientError::Network { code, .. }
            | ClientError::Storage { code, .. } => code,
        }
    }

    /// The sentence for a person.
    pub fn message(&self) -> &str {
        match self {
            ClientError::Invalid { message, .. }
            | ClientError::NotFound { message, .. }
            | ClientError::NotLoggedIn { message, .. }
            | ClientError::Auth { message, .. }
            | ClientError::Revoked { message, .. }
            | ClientError::Server { message, .. }
            | ClientError::Network { message, .. }
            | ClientError::Storage { message, .. } => message,
        }
    }

    pub(crate) fn invalid(code: &str, message: impl Into<String>) -> Self {
        ClientError::Invalid {
            code: code.into(),
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        ClientError::NotFound {
            code: "not_found".into(),
            message: format!("No {what} with id {id} on this device."),
        }
    }

    pub(crate) fn not_logged_in() -> Self {
        ClientError::NotLoggedIn {
            code: "not_logged_in".into(),
            message: "Log in first.".into(),
        }
    }

    pub(crate) fn network(message: impl Into<String>) -> Self {
        ClientError::Network {
            code: "network_error".into(),
            message: message.into(),
        }
    }

    pub(crate) fn storage(message: impl Into<String>) -> Self {
        ClientError::Storage {
            code: "storage_error".into(),
            message: message.into(),
        }
    }
}

impl From<Rejection> for ClientError {
    fn from(r: Rejection) -> Self {
        ClientError::Invalid {
            code: r.code,
            message: r.message,
        }
    }
}

impl From<rusqlite::Error> for ClientError {
    fn from(e: rusqlite::Error) -> Self {
        ClientError::storage(format!("The local database failed: {e}."))
    }
}

impl From<automerge::AutomergeError> for ClientError {
    fn from(e: automerge::AutomergeError) -> Self {
        ClientError::Storage {
            code: "document_error".into(),
            message: format!("A local document could not be changed: {e}."),
        }
    }
}

/// Result alias for the library.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
