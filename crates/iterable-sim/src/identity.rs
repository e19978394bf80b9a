//! Identifier rules: what makes a userId or an email acceptable to Iterable
//! (iterable-api.md §6.3).

/// A userId is non-empty, at most 52 characters, printable ASCII, without leading or trailing
/// whitespace.
pub(crate) fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 52
        && id.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !id.starts_with(' ')
        && !id.ends_with(' ')
}

/// A format check in the spirit of the Apache Commons email validator Iterable uses: one `@`,
/// a sensible local part, a dotted domain whose last label (the TLD) is alphabetic. Iterable
/// also checks the TLD against the IANA list; the simulator only checks its shape.
pub(crate) fn valid_email(email: &str) -> bool {
    if email.len() > 254 {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || local.starts_with('.') || local.ends_with('.') {
        return false;
    }
    if local.contains("..") {
        return false;
    }
    const LOCAL_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~.-";
    if !local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(&b))
    {
        return false;
    }
    // Walk the labels without collecting them: this runs for every subscriber.
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    // iterable-api.md §6.3
    #[test]
    fn user_id_rules() {
        assert!(valid_user_id("u_123"));
        assert!(valid_user_id(&"a".repeat(52)));
        assert!(!valid_user_id(&"a".repeat(53)));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("trailing "));
        assert!(!valid_user_id(" leading"));
        assert!(!valid_user_id("tab\there"));
        assert!(!valid_user_id("é"));
    }

    // iterable-api.md §6.3: `user @example.com` is the documented invalid example.
    #[test]
    fn email_rules() {
        assert!(valid_email("jane@example.com"));
        assert!(valid_email("Jane.Doe+x@Example.CO.uk"));
        assert!(!valid_email("user @example.com"));
        assert!(!valid_email("bad@@example.com"));
        assert!(!valid_email("no-at.example.com"));
        assert!(!valid_email("a@localhost"));
        assert!(!valid_email("a@example.c0m"));
        assert!(!valid_email(""));
    }
}
