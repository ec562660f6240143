//! Secret paths: `a-z 0-9 - _ /`, no leading/trailing slash, no empty segment, depth ≤ 10, ≤ 512 chars.

use crate::error::Error;

pub const MAX_PATH_LEN: usize = 512;
pub const MAX_DEPTH: usize = 10;
/// Final segments that name sub-resources of a secret (`…/versions`, `…/metadata`), so no secret may end in them.
pub const RESERVED_LAST_SEGMENTS: [&str; 2] = ["versions", "metadata"];

fn allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

/// Validates a secret path and explains the first rule it breaks.
pub fn validate(path: &str) -> Result<(), Error> {
    let reason = check(path);
    match reason {
        None => Ok(()),
        Some(why) => Err(Error::invalid_path(path, why)),
    }
}

fn check(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("path is empty");
    }
    if path.len() > MAX_PATH_LEN {
        return Some("path is longer than 512 characters");
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Some("path must not start or end with '/'");
    }
    let mut depth = 0;
    for seg in path.split('/') {
        depth += 1;
        if seg.is_empty() {
            return Some("path has an empty segment ('//')");
        }
        if !seg.chars().all(allowed) {
            return Some("path may contain only a-z, 0-9, '-', '_' and '/'");
        }
    }
    if depth > MAX_DEPTH {
        return Some("path is deeper than 10 segments");
    }
    let last = path.rsplit('/').next().unwrap_or(path);
    if RESERVED_LAST_SEGMENTS.contains(&last) {
        return Some(
            "the last segment may not be 'versions' or 'metadata' (reserved for sub-resources)",
        );
    }
    None
}

/// A list prefix: like a path but may end with '/' and may be empty.
pub fn validate_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.len() > MAX_PATH_LEN
        || prefix.starts_with('/')
        || prefix.contains("//")
        || !prefix.chars().all(|c| allowed(c) || c == '/')
    {
        return Err(Error::invalid_path(
            prefix,
            "prefix may contain only a-z, 0-9, '-', '_' and single '/' separators",
        ));
    }
    Ok(())
}

/// Exclusive upper bound for a range scan over every string that starts with `prefix` (byte order, which
/// is code-point order for UTF-8): the prefix with its last incrementable character incremented. Recorded
/// paths in the audit log can hold any character, so no "highest path character" shortcut is safe.
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return chars.into_iter().collect();
        }
    }
    // Empty prefix (or only U+10FFFF): bound above every string.
    String::from('\u{10FFFF}').repeat(MAX_PATH_LEN + 1)
}

/// A path pattern for wildcard expansion: `*` matches within one segment, `**` across segments.
#[derive(Debug, Clone)]
pub struct Pattern {
    segments: Vec<String>,
}

impl Pattern {
    pub fn parse(pattern: &str) -> Result<Pattern, Error> {
        if pattern.is_empty()
            || pattern.len() > MAX_PATH_LEN
            || pattern.starts_with('/')
            || pattern.ends_with('/')
            || pattern.split('/').any(|s| s.is_empty())
            || !pattern.chars().all(|c| allowed(c) || c == '/' || c == '*')
        {
            return Err(Error::invalid_path(pattern, "not a valid path pattern"));
        }
        Ok(Pattern {
            segments: pattern.split('/').map(str::to_owned).collect(),
        })
    }

    pub fn has_wildcard(&self) -> bool {
        self.segments.iter().any(|s| s.contains('*'))
    }

    /// The literal prefix before the first wildcard, for narrowing a range scan.
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            if let Some(i) = seg.find('*') {
                out.push_str(&seg[..i]);
                return out;
            }
            out.push_str(seg);
            out.push('/');
        }
        out
    }

    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        match_segments(&self.segments, &parts)
    }
}

fn match_segments(pat: &[String], parts: &[&str]) -> bool {
    match pat.split_first() {
        None => parts.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=parts.len()).any(|skip| parts.get(skip..).is_some_and(|p| match_segments(rest, p)))
        }
        Some((first, rest)) => match parts.split_first() {
            Some((p, prest)) => {
                glob_segment(first.as_bytes(), p.as_bytes()) && match_segments(rest, prest)
            }
            None => false,
        },
    }
}

/// `*` within a segment matches any run of characters (no '/').
fn glob_segment(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => {
            (0..=s.len()).any(|i| s.get(i..).is_some_and(|t| glob_segment(rest, t)))
        }
        Some((c, rest)) => s
            .split_first()
            .is_some_and(|(d, t)| c == d && glob_segment(rest, t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_paths() {
        for p in [
            "environments/production/salesforce/api-credentials",
            "a",
            "a_b-c/0/9",
            "integrations/stripe/secret-key",
        ] {
            assert!(validate(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn rejects_each_rule() {
        let deep = ["a"; 11].join("/");
        let long = "a".repeat(513);
        for p in [
            "",
            "/a",
            "a/",
            "a//b",
            "A",
            "a.b",
            "a b",
            "a/versions",
            "a/metadata",
            "é",
            &deep,
            &long,
        ] {
            let e = validate(p).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::InvalidPath, "{p}");
        }
        assert!(validate(&["a"; 10].join("/")).is_ok());
        assert!(validate(&"a".repeat(512)).is_ok());
        assert!(validate("versions/a").is_ok());
    }

    #[test]
    fn prefix_rules() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("environments/production/").is_ok());
        assert!(validate_prefix("/x").is_err());
        assert!(validate_prefix("a//").is_err());
        assert!(validate_prefix("A").is_err());
        let up = prefix_upper_bound("environments/production/");
        assert_eq!(up, "environments/production0");
        for p in [
            "environments/production/x",
            "environments/production/~x",
            "environments/production/\u{e9}vil",
        ] {
            assert!(p < up.as_str(), "{p}");
        }
        assert!("environments/productionx" > up.as_str());
        assert!("anything" < prefix_upper_bound("").as_str());
    }

    #[test]
    fn patterns() {
        let p = Pattern::parse("integrations/salesforce/*").unwrap();
        assert!(p.matches("integrations/salesforce/oauth"));
        assert!(!p.matches("integrations/salesforce/a/b"));
        assert!(!p.matches("integrations/stripe/x"));
        assert_eq!(p.literal_prefix(), "integrations/salesforce/");
        let p = Pattern::parse("integrations/**").unwrap();
        assert!(p.matches("integrations/a/b/c"));
        assert!(p.matches("integrations/a"));
        let p = Pattern::parse("a/*-key/**/x").unwrap();
        assert!(p.matches("a/api-key/x"));
        assert!(p.matches("a/api-key/1/2/x"));
        assert!(!p.matches("a/api-kez/x"));
        assert!(Pattern::parse("a//b").is_err());
        assert!(!Pattern::parse("a/b").unwrap().has_wildcard());
    }
}
