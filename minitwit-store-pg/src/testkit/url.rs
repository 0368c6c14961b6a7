//! Swapping the database name in a PostgreSQL URL, for fresh databases on a server
//! given by URL.

/// `url` with its database (the path) replaced by `database`; query parameters kept.
pub(super) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end =
        base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(with_database("postgres://u:p@h:5/old", "new"), "postgres://u:p@h:5/new");
        assert_eq!(with_database("postgres://h", "new"), "postgres://h/new");
        assert_eq!(
            with_database("postgres://u@h/old?host=/tmp/x&sslmode=disable", "new"),
            "postgres://u@h/new?host=/tmp/x&sslmode=disable"
        );
        assert_eq!(with_database("postgresql:///old?host=/s", "n"), "postgresql:///n?host=/s");
    }
}
