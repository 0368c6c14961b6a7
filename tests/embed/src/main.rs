//! The getting-started steps of `minitwit-store-sled`'s front page, as an embedder's
//! program runs them: open a sled store, build the service, register two users, follow,
//! post, read the home timeline, meet a refusal, close. It prints how long one
//! registration and one sign-in took in this build (for the record, not checked).

use minitwit_core::{MessageText, MiniTwit, PageSize, Registration, ServiceError, Timeline};
use minitwit_store_sled::{SledOptions, SledStore};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(dir.path().join("minitwit-data"), SledOptions::default())?;
    let twit = MiniTwit::new(Arc::new(store));
    let started = Instant::now();
    let alice = twit.register(Registration::parse("alice", "a@example.com", "pw", None)?).await?;
    let registration = started.elapsed();
    let bob = twit.register(Registration::parse("bob", "b@example.com", "pw", None)?).await?;
    twit.follow(alice.id, bob.id).await?;
    twit.post(&bob, MessageText::parse("hello, alice")?).await?;
    let home = twit.timeline(Timeline::Home(alice.id), None, PageSize::PER_PAGE).await?;
    assert_eq!(home.entries[0].text, "hello, alice", "alice's home shows bob's post");
    let taken = twit.register(Registration::parse("bob", "c@example.com", "pw", None)?).await;
    assert_eq!(taken.unwrap_err(), ServiceError::UsernameTaken);
    let started = Instant::now();
    assert_eq!(twit.authenticate("alice", "pw").await?.id, alice.id);
    let sign_in = started.elapsed();
    twit.close().await?;
    println!(
        "embedding check: ok; one registration {:.1} ms, one sign-in {:.1} ms (debug build)",
        registration.as_secs_f64() * 1e3,
        sign_in.as_secs_f64() * 1e3
    );
    Ok(())
}
