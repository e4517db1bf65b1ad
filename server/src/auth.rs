//! Passwords, access tokens and refresh tokens.
//!
//! * Passwords are hashed with argon2id (PHC strings in the `users` table).
//! * Access tokens are HS256 JWTs that live 15 minutes and name the tenant, user, device and
//!   role. Only HS256 is accepted: `alg: none` and every other algorithm fail verification.
//!   A valid signature is not enough: every request also checks that the user is active and the
//!   device not revoked, so disabling either stops sync at once, not at token expiry.
//! * Refresh tokens are 256 random bits, single use, bound to one device, stored as SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use fieldsync_sync::{DeviceId, Role, TenantId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long an access token lives.
pub const ACCESS_TTL_SECS: u64 = 15 * 60;
/// How long a refresh token lives unused.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against its stored hash. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub tid: TenantId,
    pub did: DeviceId,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// Signs and verifies access tokens with the server's secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: u64,
}

impl Tokens {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(
        &self,
        tenant: TenantId,
        user: UserId,
        device: DeviceId,
        role: Role,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.issue_at(tenant, user, device, role, unix_secs())
    }

    /// A token as if issued at `now` (Unix seconds); tests use it to make expired tokens.
    pub fn issue_at(
        &self,
        tenant: TenantId,
        user: UserId,
        device: DeviceId,
        role: Role,
        now: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user,
            tid: tenant,
            did: device,
            role,
            iat: now,
            exp: now + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        v.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// A new refresh token and the hash to store for it.
pub fn new_refresh_token() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse").expect("hash");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let t = Tokens::new(b"secret-one", 60);
        let (tid, uid, did) = (TenantId::new(), UserId::new(), DeviceId::new());
        let tok = t.issue(tid, uid, did, Role::FieldRep).expect("issue");
        let c = t.verify(&tok).expect("verify");
        assert_eq!(
            (c.tid, c.sub, c.did, c.role),
            (tid, uid, did, Role::FieldRep)
        );
        // Another server's secret.
        assert_eq!(
            Tokens::new(b"secret-two", 60).verify(&tok).err(),
            Some(TokenError::Invalid)
        );
        // alg: none with the same claims.
        let parts: Vec<&str> = tok.split('.').collect();
        let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            t.verify(&format!("{none_header}.{}.", parts[1])).err(),
            Some(TokenError::Invalid)
        );
        // Expired.
        let old = Tokens::new(b"secret-one", 0);
        let claims = Claims {
            sub: uid,
            tid,
            did,
            role: Role::Admin,
            iat: 1,
            exp: 2,
        };
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &old.encoding)
            .expect("encode");
        assert_eq!(t.verify(&expired).err(), Some(TokenError::Expired));
    }
}
