//! The scenario file: one simulator action per line, tab-separated without quoting
//! (`id, delay, unix-ms, action, user, argument[, password]`), as in CONTRACT.md §4.4.

use super::ReplayError;
use std::io::BufRead;

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKind {
    /// `POST /register`.
    Register,
    /// `POST /msgs/{user}`.
    Tweet,
    /// `POST /fllws/{user}` with `follow`.
    Follow,
    /// `POST /fllws/{user}` with `unfollow`.
    Unfollow,
}

impl ActionKind {
    /// The name the scenario uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Tweet => "tweet",
            Self::Follow => "follow",
            Self::Unfollow => "unfollow",
        }
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One action of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The action's id, sent as `latest`.
    pub id: i64,
    /// Who acts (the user registering, posting or following).
    pub user: String,
    /// What the action does, with its argument.
    pub request: ActionRequest,
}

/// What an action sends besides its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRequest {
    /// Register `user` with this email and password.
    Register {
        /// The email address.
        email: String,
        /// The password, sent as `pwd`.
        pwd: String,
    },
    /// Post this text as `user`.
    Tweet {
        /// The message text.
        content: String,
    },
    /// `user` follows `target`.
    Follow {
        /// Whom to follow.
        target: String,
    },
    /// `user` unfollows `target`.
    Unfollow {
        /// Whom to unfollow.
        target: String,
    },
}

impl Action {
    /// The kind of action.
    pub fn kind(&self) -> ActionKind {
        match self.request {
            ActionRequest::Register { .. } => ActionKind::Register,
            ActionRequest::Tweet { .. } => ActionKind::Tweet,
            ActionRequest::Follow { .. } => ActionKind::Follow,
            ActionRequest::Unfollow { .. } => ActionKind::Unfollow,
        }
    }

    /// The other user a follow or unfollow names.
    pub fn target(&self) -> Option<&str> {
        match &self.request {
            ActionRequest::Follow { target } | ActionRequest::Unfollow { target } => Some(target),
            ActionRequest::Register { .. } | ActionRequest::Tweet { .. } => None,
        }
    }
}

/// Reads the scenario's actions, at most `limit` of them. Blank lines are skipped.
pub fn parse(reader: impl BufRead, limit: Option<usize>) -> Result<Vec<Action>, ReplayError> {
    let mut actions = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        if limit.is_some_and(|limit| actions.len() >= limit) {
            break;
        }
        let line = line?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            continue;
        }
        let action =
            parse_line(line).map_err(|reason| ReplayError::Scenario { line: index + 1, reason })?;
        actions.push(action);
    }
    Ok(actions)
}

/// One line: `id, delay, unix-ms, action, user, argument[, password]`.
fn parse_line(line: &str) -> Result<Action, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [id, _delay, _unix_ms, kind, user, argument, rest @ ..] = fields.as_slice() else {
        return Err(format!("expected at least 6 tab-separated fields, found {}", fields.len()));
    };
    let id = id.parse::<i64>().map_err(|_| format!("the id {id:?} is not an integer"))?;
    let argument = (*argument).to_owned();
    let request = match *kind {
        "register" => {
            let pwd = rest.first().ok_or("a register action needs a password field")?;
            ActionRequest::Register { email: argument, pwd: (*pwd).to_owned() }
        }
        "tweet" => ActionRequest::Tweet { content: argument },
        "follow" => ActionRequest::Follow { target: argument },
        "unfollow" => ActionRequest::Unfollow { target: argument },
        other => return Err(format!("unknown action {other:?}")),
    };
    Ok(Action { id, user: (*user).to_owned(), request })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "0\t0\t1582246860738\tregister\tRoger Histand\tRoger+Histand@hotmail.com\t]=)[X{Km{z\n\
        3\t3614448\t1582270042673\ttweet\tRoger Histand\tFrom hour to hour \"yes\"?\r\n\
        \n\
        7\t1\t2\tfollow\tRoger Histand\tWendell Ballan\n\
        8\t1\t2\tunfollow\tRoger Histand\tWendell Ballan\n";

    #[test]
    fn reads_every_kind_without_quoting() {
        let actions = parse(SAMPLE.as_bytes(), None).expect("valid sample");
        assert_eq!(actions.len(), 4);
        assert_eq!(actions[0].user, "Roger Histand");
        assert_eq!(
            actions[0].request,
            ActionRequest::Register {
                email: "Roger+Histand@hotmail.com".into(),
                pwd: "]=)[X{Km{z".into()
            }
        );
        assert_eq!(
            actions[1].request,
            ActionRequest::Tweet { content: "From hour to hour \"yes\"?".into() }
        );
        assert_eq!(actions[2].target(), Some("Wendell Ballan"));
        assert_eq!(actions[3].kind(), ActionKind::Unfollow);
        assert_eq!(actions[3].id, 8);
    }

    #[test]
    fn limit_and_errors() {
        assert_eq!(parse(SAMPLE.as_bytes(), Some(2)).expect("valid").len(), 2);
        for bad in
            ["x\t0\t0\ttweet\ta\tb", "1\t0\t0\tdance\ta\tb", "1\t0\t0\tregister\ta\tb", "1\t2"]
        {
            let err = parse(bad.as_bytes(), None).expect_err(bad);
            assert!(matches!(err, ReplayError::Scenario { line: 1, .. }), "{err}");
        }
    }
}
