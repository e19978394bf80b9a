//! Identifier validation and normalisation, per Iterable's rules (iterable-api.md §6.3), and
//! the identity decision (design decision 3).
//!
//! - `userId`: non-empty, at most 52 characters, printable ASCII, no surrounding whitespace
//!   (Iterable treats a padded id as a different user).
//! - email: trimmed and lowercased (Iterable stores emails lowercase), at most 254 characters,
//!   `local@domain` with a plausible TLD and no spaces: the shape Apache Commons'
//!   `EmailValidator`, which Iterable uses, accepts.

use iterable::ProjectType;

use crate::model::{Identity, Reason, ReasonCode};

/// Longest `userId` Iterable accepts.
pub const MAX_USER_ID_CHARS: usize = 52;
/// Longest email accepted (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Why an identity was refused. Messages name the value's problem, not the value's secret parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Neither identifier is present (an `anonymousId` alone is not enough).
    #[error("no email or userId: Iterable cannot identify this user")]
    Missing,
    /// The project identifies users by `userId` and there is none.
    #[error("this is a userId-based Iterable project and the event has no userId")]
    UserIdRequired,
    /// The `userId` breaks a rule.
    #[error("userId {value:?} is invalid: {problem}")]
    BadUserId {
        /// The value as sent.
        value: String,
        /// Which rule.
        problem: &'static str,
    },
    /// The email breaks a rule.
    #[error("email {value:?} is invalid: {problem}")]
    BadEmail {
        /// The value as sent.
        value: String,
        /// Which rule.
        problem: &'static str,
    },
}

impl IdentityError {
    /// The outcome reason: `no_identifier` (a skip) for a missing identity, `bad_identifier`
    /// (a rejection) otherwise.
    pub fn reason(&self) -> Reason {
        let code = match self {
            IdentityError::Missing => ReasonCode::NoIdentifier,
            _ => ReasonCode::BadIdentifier,
        };
        Reason::new(code, self.to_string())
    }
}

/// Checks a `userId` against Iterable's rules; returns it unchanged (ids are case-sensitive).
pub fn validate_user_id(raw: &str) -> Result<&str, IdentityError> {
    let bad = |problem| IdentityError::BadUserId {
        value: raw.to_owned(),
        problem,
    };
    if raw.is_empty() {
        return Err(bad("it is empty"));
    }
    if raw.trim() != raw {
        return Err(bad("it has leading or trailing whitespace"));
    }
    if !raw.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad("it has non-ASCII or non-printable characters"));
    }
    if raw.len() > MAX_USER_ID_CHARS {
        return Err(bad("it is longer than 52 characters"));
    }
    Ok(raw)
}

/// Trims, lowercases and checks an email.
pub fn normalize_email(raw: &str) -> Result<String, IdentityError> {
    let bad = |problem| IdentityError::BadEmail {
        value: raw.to_owned(),
        problem,
    };
    let t = raw.trim();
    if t.is_empty() {
        return Err(bad("it is empty"));
    }
    if t.chars().count() > MAX_EMAIL_CHARS {
        return Err(bad("it is longer than 254 characters"));
    }
    let Some((local, domain)) = t.rsplit_once('@') else {
        return Err(bad("it has no @"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(bad(
            "the part before @ is empty or longer than 64 characters",
        ));
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces or control characters"));
    }
    if !valid_local(local) {
        return Err(bad(
            "the part before @ has characters or dots an address cannot have",
        ));
    }
    if !valid_domain(domain) {
        return Err(bad(
            "the domain is not a valid host name with a top-level domain",
        ));
    }
    Ok(t.to_lowercase())
}

fn valid_local(local: &str) -> bool {
    // Unquoted dot-atom: RFC 5322 atext, no leading, trailing or doubled dots.
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";
    !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c) || !c.is_ascii())
}

fn valid_domain(domain: &str) -> bool {
    if domain.is_empty() || domain.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld = labels[labels.len() - 1];
    // A TLD is letters only (or an IDN `xn--` label), at least two long.
    let tld_ok = (tld.len() >= 2 && tld.chars().all(char::is_alphabetic))
        || (tld.len() > 4 && tld.to_ascii_lowercase().starts_with("xn--") && label_ok(tld));
    labels.iter().all(|l| label_ok(l)) && tld_ok
}

impl Identity {
    /// Validates and normalises identifiers for a project (design decision 3). Blank strings
    /// count as absent; a padded or otherwise invalid value is an error, never silently fixed.
    pub fn new(
        email: Option<&str>,
        user_id: Option<&str>,
        project: ProjectType,
    ) -> Result<Identity, IdentityError> {
        let email = email.filter(|e| !e.trim().is_empty());
        let user_id = user_id.filter(|u| !u.is_empty());
        if email.is_none() && user_id.is_none() {
            return Err(IdentityError::Missing);
        }
        if project == ProjectType::UserId && user_id.is_none() {
            return Err(IdentityError::UserIdRequired);
        }
        let user_id = user_id
            .map(validate_user_id)
            .transpose()?
            .map(str::to_owned);
        let email = email.map(normalize_email).transpose()?;
        Ok(Identity { email, user_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdentityKey;

    // iterable-api.md §6.3: userId is non-empty, ≤52 chars, printable ASCII, no trailing space.
    #[test]
    fn user_id_rules_follow_iterable() {
        assert!(validate_user_id("u-1001").is_ok());
        assert!(validate_user_id(&"x".repeat(52)).is_ok());
        for bad in ["", " u1", "u1 ", &"x".repeat(53), "ü1", "u\t1"] {
            assert!(validate_user_id(bad).is_err(), "{bad:?}");
        }
    }

    // iterable-api.md §6.3: emails are lowercased; `user @example.com` is invalid.
    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            normalize_email("  Jane@Example.COM ").unwrap(),
            "jane@example.com"
        );
        assert_eq!(
            normalize_email("a.b+tag@sub.example.co").unwrap(),
            "a.b+tag@sub.example.co"
        );
        for bad in [
            "user @example.com",
            "no-at.example.com",
            "a@b",
            "a@example.c0m",
            "a@example.c",
            "@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example..com",
            "a@@example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    // design decision 3: hybrid keys by userId, else email; the request carries both.
    #[test]
    fn hybrid_keys_by_user_id_and_sends_both() {
        let id = Identity::new(Some("A@x.com"), Some("u1"), ProjectType::Hybrid).unwrap();
        assert_eq!(
            id.key(ProjectType::Hybrid),
            IdentityKey::UserId("u1".into())
        );
        assert_eq!(
            id.request_identifiers(ProjectType::Hybrid),
            (Some("a@x.com"), Some("u1"))
        );
        let id = Identity::new(Some("A@x.com"), None, ProjectType::Hybrid).unwrap();
        assert_eq!(
            id.key(ProjectType::Hybrid),
            IdentityKey::Email("a@x.com".into())
        );
    }

    // design decision 3: a userId project requires a userId and sends only it.
    #[test]
    fn user_id_project_requires_and_sends_only_the_user_id() {
        assert_eq!(
            Identity::new(Some("a@x.com"), None, ProjectType::UserId),
            Err(IdentityError::UserIdRequired)
        );
        let id = Identity::new(Some("a@x.com"), Some("u1"), ProjectType::UserId).unwrap();
        assert_eq!(
            id.request_identifiers(ProjectType::UserId),
            (None, Some("u1"))
        );
    }

    // design decision 3: an email project keys and sends the email; a userId alone is sent alone.
    #[test]
    fn email_project_prefers_the_email() {
        let id = Identity::new(Some("a@x.com"), Some("u1"), ProjectType::Email).unwrap();
        assert_eq!(
            id.key(ProjectType::Email),
            IdentityKey::Email("a@x.com".into())
        );
        assert_eq!(
            id.request_identifiers(ProjectType::Email),
            (Some("a@x.com"), None)
        );
        let id = Identity::new(None, Some("u1"), ProjectType::Email).unwrap();
        assert_eq!(
            id.request_identifiers(ProjectType::Email),
            (None, Some("u1"))
        );
    }

    // design decision 2: only an anonymousId is a skip (no_identifier), not a rejection.
    #[test]
    fn no_identifier_is_a_skip_and_a_bad_one_a_rejection() {
        let e = Identity::new(None, Some(""), ProjectType::Hybrid).unwrap_err();
        assert_eq!(e.reason().code, ReasonCode::NoIdentifier);
        let e = Identity::new(Some("user @example.com"), None, ProjectType::Hybrid).unwrap_err();
        assert_eq!(e.reason().code, ReasonCode::BadIdentifier);
        let e = Identity::new(None, Some("u1 "), ProjectType::Hybrid).unwrap_err();
        assert_eq!(e.reason().code, ReasonCode::BadIdentifier);
    }

    #[test]
    fn storage_form_round_trips() {
        for k in [
            IdentityKey::UserId("u:1".into()),
            IdentityKey::Email("a@x.com".into()),
        ] {
            assert_eq!(IdentityKey::from_storage(&k.to_storage()), Some(k));
        }
    }
}
