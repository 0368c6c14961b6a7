//! Embedding MiniTwit in another Rust program: the core service over the sled store,
//! with no HTTP at all.
//!
//! ```text
//! cargo run -p minitwit-store-sled --example embed_sled [DIRECTORY]
//! ```
//!
//! Without a directory the data goes to a temporary one and is removed at exit.

use minitwit_core::{MessageText, MiniTwit, PageSize, Registration, ServiceError, Timeline};
use minitwit_store_sled::{SledOptions, SledStore};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temporary = tempfile::tempdir()?;
    let dir = std::env::args().nth(1).map_or_else(|| temporary.path().to_owned(), Into::into);
    let store = SledStore::open(&dir, SledOptions::default())?;
    let twit = MiniTwit::new(Arc::new(store));

    let alice = register(&twit, "Alice Ødegård", "alice@example.com").await?;
    let bob = register(&twit, "bob", "bob@example.com").await?;
    twit.follow(bob.id, alice.id).await?;
    twit.post(&alice, MessageText::parse("Hello from an embedded MiniTwit! 🦀")?).await?;
    twit.post(&bob, MessageText::parse("<b>Markup</b> stays text & quotes \"too\"")?).await?;

    let page = twit.timeline(Timeline::Home(bob.id), None, PageSize::PER_PAGE).await?;
    println!("{}'s timeline in {}:", bob.username, dir.display());
    for entry in &page.entries {
        println!("  [{}] {}: {}", entry.pub_date, entry.author, entry.text);
    }
    let stats = twit.stats().await?;
    println!("{} users, {} messages, {} follows", stats.users, stats.messages, stats.follows);
    Ok(())
}

/// Registers a user, or logs the existing one in when the example runs again on the
/// same directory.
async fn register(
    twit: &MiniTwit,
    name: &str,
    email: &str,
) -> Result<minitwit_core::User, ServiceError> {
    let password = "correct horse battery staple";
    match twit.register(Registration::parse(name, email, password, None)?).await {
        Err(ServiceError::UsernameTaken) => twit.authenticate(name, password).await,
        other => other,
    }
}
