//! Who is asking: an agent token checked and mapped to an agent.
//!
//! - **JWTs**: MeshGuard's HS256 tokens signed with `JWT_SECRET` (claims
//!   `sub`, `name`, `tier`, `tags`, `iat`, `exp`, `iss`), and tokens of an
//!   identity provider signed with an EdDSA or RS256 key whose public half
//!   the server is given. Signature and expiry are checked; `none` and
//!   every algorithm the key was not given for are refused.
//! - **Opaque tokens**: tokens the registry issued (looked up by their
//!   SHA-256), and the seed policies' `token_prefix` tokens, which the
//!   runtime maps to a role profile by prefix.
//!
//! A JWT whose signature checked is remembered, by its exact text, with
//! its claims: the agent sends the same token on every call, and its
//! signature, issuer and claims cannot change without its text changing.
//! Its expiry is checked again on every use (as Envoy's JWT filter
//! caches verified tokens).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims writ reads (and writes, for the tokens it issues).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// http.md's name for `tier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub iat: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// Why a token was refused (answered 401).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError(pub String);

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthError {}

/// Seconds a token is still accepted after its `exp`.
const LEEWAY_S: u64 = 30;

/// The most verified tokens remembered; when full, the cache starts over.
const CACHE_MAX: usize = 10_000;

type Cache = HashMap<Box<str>, Arc<Claims>, foldhash::fast::RandomState>;

/// Checks JWTs: the HS256 secret and any public keys.
pub struct Verifier {
    secret: Option<(EncodingKey, DecodingKey)>,
    public: Vec<(Algorithm, DecodingKey)>,
    issuer: Option<String>,
    /// Tokens that verified, by their whole text.
    verified: Mutex<Cache>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.secret.is_some())
            .field("public_keys", &self.public.len())
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Verifier {
    /// # Errors
    /// A key file that cannot be read or is not an Ed25519 or RSA public
    /// key in PEM.
    pub fn new(
        secret: Option<&str>,
        public_keys: &[impl AsRef<Path>],
        issuer: Option<String>,
    ) -> Result<Verifier, AuthError> {
        let secret = match secret {
            Some(s) => Some((
                EncodingKey::from_secret(s.as_bytes())
                    .map_err(|e| AuthError(format!("JWT_SECRET: {e}")))?,
                DecodingKey::from_secret(s.as_bytes())
                    .map_err(|e| AuthError(format!("JWT_SECRET: {e}")))?,
            )),
            None => None,
        };
        let mut public = Vec::new();
        for path in public_keys {
            let path = path.as_ref();
            let pem = std::fs::read(path)
                .map_err(|e| AuthError(format!("{}: cannot read: {e}", path.display())))?;
            let key = if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
                (Algorithm::EdDSA, k)
            } else if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                (Algorithm::RS256, k)
            } else {
                return Err(AuthError(format!(
                    "{}: not an Ed25519 or RSA public key in PEM",
                    path.display()
                )));
            };
            public.push(key);
        }
        Ok(Verifier {
            secret,
            public,
            issuer,
            verified: Mutex::new(Cache::default()),
        })
    }

    /// Whether any JWT can be checked.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.secret.is_some() || !self.public.is_empty()
    }

    /// Checks a JWT and returns its claims: a token verified before (the
    /// same text) is not verified again, but its expiry is.
    ///
    /// # Errors
    /// A bad signature, an algorithm no key was given for, an expired or
    /// malformed token, a wrong issuer.
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        self.verify_at(token, jsonwebtoken::get_current_timestamp())
    }

    /// [`Verifier::verify`] at `now` (seconds since the epoch).
    fn verify_at(&self, token: &str, now: u64) -> Result<Arc<Claims>, AuthError> {
        let known = self.cache().get(token).cloned();
        let claims = match known {
            Some(c) => c,
            None => {
                let c = Arc::new(self.decode(token)?);
                let mut cache = self.cache();
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                cache.insert(token.into(), Arc::clone(&c));
                c
            }
        };
        // jsonwebtoken's rule (`exp < now - leeway`) and its sentence.
        if claims.exp.saturating_add(LEEWAY_S) < now {
            self.cache().remove(token);
            return Err(AuthError(format!(
                "invalid token: {}",
                jsonwebtoken::errors::Error::from(
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature
                )
            )));
        }
        Ok(claims)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks a JWT's signature, algorithm, issuer and expiry.
    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError(format!("malformed token: {e}")))?;
        let key = match header.alg {
            Algorithm::HS256 => self.secret.as_ref().map(|(_, d)| d),
            alg => self.public.iter().find(|(a, _)| *a == alg).map(|(_, k)| k),
        }
        .ok_or_else(|| {
            AuthError(format!(
                "tokens signed with {:?} are not accepted",
                header.alg
            ))
        })?;
        let mut v = Validation::new(header.alg);
        v.set_required_spec_claims(&["exp", "sub"]);
        v.leeway = LEEWAY_S;
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        jsonwebtoken::decode::<Claims>(token, key, &v)
            .map(|d| d.claims)
            .map_err(|e| AuthError(format!("invalid token: {e}")))
    }

    /// Issues an HS256 token for an agent (the registry's `create`).
    ///
    /// # Errors
    /// When no `JWT_SECRET` is set.
    pub fn issue(&self, claims: &Claims) -> Result<String, AuthError> {
        let Some((enc, _)) = &self.secret else {
            return Err(AuthError("no JWT_SECRET to sign tokens with".to_owned()));
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, enc)
            .map_err(|e| AuthError(format!("cannot sign a token: {e}")))
    }
}

/// Whether `token` has a JWT's shape (three dot-separated parts).
#[must_use]
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

/// The bearer token of an `Authorization` header value.
#[must_use]
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "agent_1".into(),
            name: Some("support".into()),
            tier: Some("trusted".into()),
            tags: vec!["prod".into()],
            iat: 0,
            exp,
            iss: Some("meshguard".into()),
            ..Claims::default()
        }
    }

    #[test]
    fn hs256_tokens_are_checked_for_signature_expiry_and_algorithm() {
        let none: [&str; 0] = [];
        let v = Verifier::new(Some(SECRET), &none, None).unwrap_or_else(|e| unreachable!("{e}"));
        let now = jsonwebtoken::get_current_timestamp();
        let good = v
            .issue(&claims(now + 600))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let c = v.verify(&good).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            (c.sub.as_str(), c.tier.as_deref()),
            ("agent_1", Some("trusted"))
        );
        // Expired (past the 30 s leeway).
        let old = v
            .issue(&claims(now - 120))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(v.verify(&old).is_err());
        // Signed with another secret.
        let other = Verifier::new(Some("another-secret-another-secret-12345"), &none, None)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let forged = other
            .issue(&claims(now + 600))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(v.verify(&forged).unwrap_err().0.contains("invalid token"));
        // `alg: none`, and a tampered payload.
        let parts: Vec<&str> = good.split('.').collect();
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
        assert!(v.verify(&unsigned).is_err());
        let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
        assert!(v.verify(&tampered).is_err());
        // A required issuer.
        let strict = Verifier::new(Some(SECRET), &none, Some("someone-else".into()))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(strict.verify(&good).is_err());
    }

    /// A verified token is remembered by its exact text: its expiry is
    /// still checked on every use, with jsonwebtoken's rule and sentence,
    /// and a token one character off is verified (and refused) afresh.
    #[test]
    fn remembered_tokens_still_expire_and_only_their_own_text_is_remembered() {
        let none: [&str; 0] = [];
        let v = Verifier::new(Some(SECRET), &none, None).unwrap_or_else(|e| unreachable!("{e}"));
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now + 100;
        let good = v
            .issue(&claims(exp))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(v.verify_at(&good, now).is_ok());
        assert_eq!(v.cache().len(), 1, "the verified token is remembered");
        assert!(v.verify_at(&good, now).is_ok());
        // Still inside the leeway, then past it.
        assert!(v.verify_at(&good, exp + LEEWAY_S).is_ok());
        let late = v
            .verify_at(&good, exp + LEEWAY_S + 1)
            .map(|c| c.sub.clone());
        let expired = v
            .issue(&claims(now - 120))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(late, v.verify(&expired).map(|c| c.sub.clone()));
        assert!(
            late.as_ref()
                .is_err_and(|e| e.0 == "invalid token: ExpiredSignature"),
            "{late:?}"
        );
        assert_eq!(v.cache().len(), 0, "an expired token is forgotten");
        // A tampered signature of a remembered token is refused.
        assert!(v.verify_at(&good, now).is_ok());
        let mut bad = good.clone();
        let last = if bad.ends_with('A') { 'B' } else { 'A' };
        bad.pop();
        bad.push(last);
        assert!(v.verify_at(&bad, now).is_err());
        assert_eq!(v.cache().len(), 1);
        // The cache is bounded.
        for i in 0..CACHE_MAX + 5 {
            let mut c = claims(exp);
            c.sub = format!("agent_{i}");
            let t = v.issue(&c).unwrap_or_else(|e| unreachable!("{e}"));
            assert!(v.verify_at(&t, now).is_ok());
        }
        assert!(v.cache().len() <= CACHE_MAX);
    }

    #[test]
    fn bearer_headers_are_read_leniently() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
