//! `generate`: a synthetic data set of a chosen size ([`minitwit_core::synthetic`]) loaded
//! straight into an empty store through import batches, never over HTTP.

use crate::cli::{GenerateArgs, GraphArg};
use anyhow::{Context, Result, bail};
use minitwit_core::Store;
use minitwit_core::synthetic::{self, Graph, Shape};
use std::io::Write;
use std::time::Instant;

/// Loads the data set `args` describes into `store`, which must be empty.
pub async fn run(store: &dyn Store, args: GenerateArgs, out: &mut impl Write) -> Result<()> {
    let shape = shape(args)?;
    let before = store.counts().await.context("reading the store's counts")?;
    if before.users + before.messages + before.follows > 0 {
        bail!(
            "the store is not empty ({} users, {} messages); generate needs an empty store",
            before.users,
            before.messages
        );
    }
    let started = Instant::now();
    synthetic::load(store, &shape).await.context("loading the data set")?;
    store.flush().await.context("flushing the store")?;
    let after = store.counts().await.context("reading the store's counts")?;
    writeln!(
        out,
        "generated {} users, {} follows, {} messages in {:.1} s",
        after.users,
        after.follows,
        after.messages,
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// The shape asked for, if it is one: each user follows fewer people than there are.
fn shape(args: GenerateArgs) -> Result<Shape> {
    if args.follows >= args.users {
        bail!("--follows must be below --users ({} users)", args.users);
    }
    let graph = match args.graph {
        GraphArg::Even => Graph::Even,
        GraphArg::Social => Graph::Social,
    };
    Ok(Shape { users: args.users, follows_per_user: args.follows, messages: args.messages, graph })
}
