//! The administration commands: users, messages (the original `flag_tool`, without its
//! SQL injection) and stats. Each is a call into the [`MiniTwit`] service; output is
//! tab-separated, one record per line, for scripts.

use crate::cli::{MessageCommand, PasswordSource, UserCommand};
use anyhow::{Context, Result, bail};
use minitwit_core::{
    Message, MessageFilter, MiniTwit, PageSize, Password, Registration, ServiceError, User, UserId,
};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{BufRead, Write};

/// Runs a `user` subcommand.
pub async fn user(service: &MiniTwit, command: UserCommand, out: &mut impl Write) -> Result<()> {
    match command {
        UserCommand::List { limit, after } => list_users(service, limit, after, out).await?,
        UserCommand::Show { username } => {
            let user = service.user(&username).await.map_err(|e| name_error(e, &username))?;
            writeln!(out, "{}", user_line(&user))?;
        }
        UserCommand::Create { username, email, password } => {
            let password = read_password(&password)?;
            let registration = Registration::parse(&username, &email, &password, None)?;
            let user = service.register(registration).await?;
            writeln!(out, "created user {} ({})", user.id, user.username)?;
        }
        UserCommand::Disable { username } => set_disabled(service, &username, true, out).await?,
        UserCommand::Enable { username } => set_disabled(service, &username, false, out).await?,
        UserCommand::Delete { username } => {
            service.delete_user(&username).await.map_err(|e| name_error(e, &username))?;
            writeln!(out, "deleted user {username} with their messages and follows")?;
        }
        UserCommand::Password { username, password } => {
            let password = Password::parse(&read_password(&password)?)?;
            service
                .set_password(&username, &password)
                .await
                .map_err(|e| name_error(e, &username))?;
            writeln!(out, "password of {username} changed")?;
        }
    }
    Ok(())
}

/// Lists up to `limit` users (all when `None`) with ids above `after`, a page at a time.
async fn list_users(
    service: &MiniTwit,
    limit: Option<usize>,
    mut after: Option<UserId>,
    out: &mut impl Write,
) -> Result<()> {
    let mut left = limit.unwrap_or(usize::MAX);
    while left > 0 {
        let page = service.users(after, PageSize::new(left)).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        left -= page.len();
        for user in &page {
            writeln!(out, "{}", user_line(user))?;
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

/// `ID  USERNAME  EMAIL  active|disabled` — never the hash.
fn user_line(user: &User) -> String {
    let state = if user.disabled { "disabled" } else { "active" };
    format!("{}\t{}\t{}\t{state}", user.id, user.username, user.email)
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
        MessageCommand::List { flagged, unflagged, user, limit, before } => {
            let author = match &user {
                Some(name) => Some(service.user(name).await.map_err(|e| name_error(e, name))?.id),
                None => None,
            };
            let flagged = (flagged || unflagged).then_some(flagged);
            let filter = MessageFilter { author, flagged, before, limit };
            let messages = service.messages(filter).await?;
            print_messages(service, &messages, out).await?;
        }
        MessageCommand::Flag { ids } => set_flagged(service, &ids, true, out).await?,
        MessageCommand::Unflag { ids } => set_flagged(service, &ids, false, out).await?,
    }
    Ok(())
}

async fn set_flagged(
    service: &MiniTwit,
    ids: &[i64],
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

/// `ID  DATE  AUTHOR  flagged|-  TEXT` with the text's newlines and tabs escaped.
async fn print_messages(
    service: &MiniTwit,
    messages: &[Message],
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
        let flag = if message.flagged { "flagged" } else { "-" };
        let text = message.text.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t");
        writeln!(out, "{}\t{}\t{author}\t{flag}\t{text}", message.id, message.pub_date)?;
    }
    Ok(())
}

/// Prints the totals.
pub async fn stats(service: &MiniTwit, out: &mut impl Write) -> Result<()> {
    let counts = service.stats().await?;
    writeln!(out, "users\t{}", counts.users)?;
    writeln!(out, "messages\t{}", counts.messages)?;
    writeln!(out, "follows\t{}", counts.follows)?;
    writeln!(out, "flagged\t{}", counts.flagged)?;
    writeln!(out, "latest\t{}", service.latest().await?)?;
    Ok(())
}
