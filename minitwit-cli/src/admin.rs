//! The administration commands: users, messages (the original `flag_tool`, without its
//! SQL injection) and stats. Each is a call into the [`MiniTwit`] service; output is
//! tab-separated, one record per line, or with `--json` one JSON object per record (JSON
//! Lines), for scripts. Deleting asks first on a terminal and needs `--yes` otherwise.

use crate::cli::{MessageCommand, PasswordSource, UserCommand};
use anyhow::{Context, Result, bail};
use minitwit_core::{
    Message, MessageFilter, MessageId, MiniTwit, PageSize, Password, Registration, ServiceError,
    User, UserId,
};
use serde_json::json;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{BufRead, IsTerminal, Write};

/// Runs a `user` subcommand.
pub async fn user(service: &MiniTwit, command: UserCommand, out: &mut impl Write) -> Result<()> {
    match command {
        UserCommand::List { limit, after, json } => {
            list_users(service, limit, after, json.json, out).await?;
        }
        UserCommand::Show { username, json } => {
            let user = service.user(&username).await.map_err(|e| name_error(e, &username))?;
            writeln!(out, "{}", user_line(&user, json.json))?;
        }
        UserCommand::Create { username, email, password } => {
            let password = read_password(&password)?;
            let registration = Registration::parse(&username, &email, &password, None)?;
            let user = service.register(registration).await?;
            writeln!(out, "created user {} ({})", user.id, user.username)?;
        }
        UserCommand::Disable { username } => set_disabled(service, &username, true, out).await?,
        UserCommand::Enable { username } => set_disabled(service, &username, false, out).await?,
        UserCommand::Delete { username, yes } => {
            confirm(yes, &format!("delete user {username:?} with their messages and follows"))?;
            service.delete_user(&username).await.map_err(|e| name_error(e, &username))?;
            writeln!(out, "deleted user {username} with their messages and follows")?;
        }
        UserCommand::SignOut { username } => {
            service.sign_out_everywhere(&username).await.map_err(|e| name_error(e, &username))?;
            writeln!(out, "signed {username} out everywhere")?;
        }
        UserCommand::Password { username, password } => {
            let password = Password::parse(&read_password(&password)?)?;
            service
                .set_password(&username, &password)
                .await
                .map_err(|e| name_error(e, &username))?;
            writeln!(out, "password of {username} changed; their sessions have ended")?;
        }
    }
    Ok(())
}

/// Lists up to `limit` users (all when `None`) with ids above `after`, a page at a time.
async fn list_users(
    service: &MiniTwit,
    limit: Option<usize>,
    mut after: Option<UserId>,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let mut left = limit.unwrap_or(usize::MAX);
    while left > 0 {
        let page = service.users(after, PageSize::new(left)).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        left -= page.len();
        for user in &page {
            writeln!(out, "{}", user_line(user, json))?;
        }
    }
    Ok(())
}

async fn set_disabled(
    service: &MiniTwit,
    username: &str,
    disabled: bool,
    out: &mut impl Write,
) -> Result<()> {
    service.set_disabled(username, disabled).await.map_err(|e| name_error(e, username))?;
    let state = if disabled { "disabled" } else { "enabled" };
    writeln!(out, "{username} {state}")?;
    Ok(())
}

/// `ID  USERNAME  EMAIL  active|disabled`, or a JSON object — never the hash.
fn user_line(user: &User, json: bool) -> String {
    if json {
        let record = json!({
            "id": user.id, "username": user.username, "email": user.email,
            "disabled": user.disabled,
        });
        return record.to_string();
    }
    let state = if user.disabled { "disabled" } else { "active" };
    format!("{}\t{}\t{}\t{state}", user.id, user.username, user.email)
}

/// Goes ahead with a destructive `action` when `--yes` was given or the operator
/// answers `y` on a terminal; refuses otherwise.
fn confirm(yes: bool, action: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("refusing to {action} without --yes (standard input is not a terminal to ask on)");
    }
    eprint!("{action}? This cannot be undone. [y/N] ");
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).context("reading the answer")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not confirmed; nothing was changed");
    }
    Ok(())
}

/// Names the user in an "unknown user" error.
fn name_error(err: ServiceError, username: &str) -> anyhow::Error {
    match err {
        ServiceError::UnknownUser => anyhow::anyhow!("no user named {username:?}"),
        other => other.into(),
    }
}

/// The password from `--password` or the first line of stdin (without its newline).
fn read_password(source: &PasswordSource) -> Result<String> {
    if let Some(password) = &source.password {
        return Ok(password.expose().to_owned());
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password.to_owned())
}

/// Runs a `message` subcommand.
pub async fn message(
    service: &MiniTwit,
    command: MessageCommand,
    out: &mut impl Write,
) -> Result<()> {
    match command {
        MessageCommand::List { flagged, unflagged, user, limit, before, json } => {
            let author = match &user {
                Some(name) => Some(service.user(name).await.map_err(|e| name_error(e, name))?.id),
                None => None,
            };
            let flagged = (flagged || unflagged).then_some(flagged);
            let filter = MessageFilter { author, flagged, before, limit };
            let messages = service.messages(filter).await?;
            print_messages(service, &messages, json.json, out).await?;
        }
        MessageCommand::Flag { ids } => set_flagged(service, &ids, true, out).await?,
        MessageCommand::Unflag { ids } => set_flagged(service, &ids, false, out).await?,
    }
    Ok(())
}

async fn set_flagged(
    service: &MiniTwit,
    ids: &[MessageId],
    flagged: bool,
    out: &mut impl Write,
) -> Result<()> {
    match service.set_flagged(ids, flagged).await {
        Err(ServiceError::UnknownMessages(ids)) => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            let what = if ids.len() == 1 { "no message with id" } else { "no messages with ids" };
            bail!("{what} {}; nothing was changed", ids.join(", "))
        }
        other => other?,
    }
    let verb = if flagged { "flagged" } else { "unflagged" };
    writeln!(out, "{verb} {} message(s)", ids.len())?;
    Ok(())
}

/// `ID  DATE  AUTHOR  flagged|-  TEXT` with the text's newlines and tabs escaped, or a
/// JSON object per message.
async fn print_messages(
    service: &MiniTwit,
    messages: &[Message],
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let mut authors: HashMap<UserId, String> = HashMap::new();
    for message in messages {
        let author = match authors.entry(message.author_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => unknown.insert(
                service
                    .user_by_id(message.author_id)
                    .await?
                    .map_or_else(|| format!("#{}", message.author_id), |u| u.username),
            ),
        };
        if json {
            let record = json!({
                "id": message.id, "pub_date": message.pub_date, "author": author,
                "flagged": message.flagged, "text": message.text,
            });
            writeln!(out, "{record}")?;
            continue;
        }
        let flag = if message.flagged { "flagged" } else { "-" };
        let text = message.text.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t");
        writeln!(out, "{}\t{}\t{author}\t{flag}\t{text}", message.id, message.pub_date)?;
    }
    Ok(())
}

/// Prints the totals, as lines or one JSON object.
pub async fn stats(service: &MiniTwit, json: bool, out: &mut impl Write) -> Result<()> {
    let counts = service.stats().await?;
    if json {
        let record = json!({
            "users": counts.users, "messages": counts.messages, "follows": counts.follows,
            "flagged": counts.flagged, "latest": service.latest().await?,
        });
        writeln!(out, "{record}")?;
        return Ok(());
    }
    writeln!(out, "users\t{}", counts.users)?;
    writeln!(out, "messages\t{}", counts.messages)?;
    writeln!(out, "follows\t{}", counts.follows)?;
    writeln!(out, "flagged\t{}", counts.flagged)?;
    writeln!(out, "latest\t{}", service.latest().await?)?;
    Ok(())
}
