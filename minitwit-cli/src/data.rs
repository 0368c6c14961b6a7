//! Moving data: `export`, `import` and `copy`, over core's [`transfer`] module, with
//! progress bars on a terminal. Files are written to a temporary name and renamed when
//! complete, so an interrupted export leaves no half-written file behind.

use crate::cli::{CopyArgs, ExportArgs, ImportArgs, StoreOptions};
use crate::store_url::StoreUrl;
use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use minitwit_core::transfer::{self, Fingerprint, Progress, Section, TransferOptions};
use minitwit_core::{Counts, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufWriter};

/// `export --out FILE`: the whole store into a new file.
pub async fn export(store: &Arc<dyn Store>, args: &ExportArgs, out: &mut impl Write) -> Result<()> {
    if !args.force && tokio::fs::try_exists(&args.out).await.unwrap_or(true) {
        bail!("{} exists; pass --force to replace it", args.out.display());
    }
    let partial = partial_path(&args.out)?;
    let written = write_export(store, &partial).await;
    let renamed = match written {
        Ok(fingerprint) => tokio::fs::rename(&partial, &args.out)
            .await
            .map(|()| fingerprint)
            .with_context(|| format!("renaming the export to {}", args.out.display())),
        Err(err) => Err(err),
    };
    if renamed.is_err() {
        // Best effort: the error that matters is the one being returned.
        let _ = tokio::fs::remove_file(&partial).await;
    }
    writeln!(out, "exported to {}: {}", args.out.display(), renamed?)?;
    Ok(())
}

/// Writes the export into `path` (a new file) and syncs it to disk.
async fn write_export(store: &Arc<dyn Store>, path: &Path) -> Result<Fingerprint> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    let mut writer = BufWriter::new(file);
    let mut bars = Bars::new("exporting");
    let fingerprint =
        transfer::export(store, &mut writer, TransferOptions::default(), &mut bars).await?;
    bars.finish();
    writer.flush().await?;
    writer.into_inner().sync_all().await.context("syncing the export file")?;
    Ok(fingerprint)
}

/// `DIR/.NAME.partial-PID` next to `path`, so the final rename stays on one file system.
fn partial_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?
        .to_string_lossy();
    Ok(path.with_file_name(format!(".{name}.partial-{}", std::process::id())))
}

/// `import --in FILE`: checks the whole file, imports it, verifies the store.
pub async fn import(store: &Arc<dyn Store>, args: &ImportArgs, out: &mut impl Write) -> Result<()> {
    let options = TransferOptions { allow_non_empty: args.force, ..TransferOptions::default() };
    let mut bars = Bars::new("importing");
    let imported = transfer::import_file(store, &args.input, options, &mut bars)
        .await
        .with_context(|| format!("importing {}", args.input.display()))?;
    bars.finish();
    writeln!(out, "imported and verified: {imported}")?;
    Ok(())
}

/// `copy --from URL --to URL`: copies, then verifies that both fingerprints agree.
pub async fn copy(args: &CopyArgs, options: StoreOptions, out: &mut impl Write) -> Result<()> {
    let from_url = StoreUrl::parse(&args.from)?;
    let to_url = StoreUrl::parse(&args.to)?;
    if from_url == to_url {
        bail!("--from and --to name the same store ({from_url})");
    }
    let from = from_url.open(options).await.context("opening --from")?;
    let to = to_url.open(options).await.context("opening --to")?;
    let transfer_options =
        TransferOptions { chunk_size: args.batch_size.max(1), allow_non_empty: args.force };
    let mut bars = Bars::new("copying");
    let copied = transfer::copy(&from, &to, transfer_options, &mut bars)
        .await
        .with_context(|| format!("copying {from_url} to {to_url}"))?;
    bars.finish();
    to.flush().await?;
    writeln!(out, "copied {from_url} to {to_url} and verified: {copied}")?;
    Ok(())
}

/// Progress bars on stderr, one per record kind; drawn only on a terminal.
struct Bars {
    verb: &'static str,
    multi: MultiProgress,
    bars: Vec<(Section, ProgressBar)>,
    verifying: Option<ProgressBar>,
}

impl Bars {
    fn new(verb: &'static str) -> Self {
        Self { verb, multi: MultiProgress::new(), bars: Vec::new(), verifying: None }
    }

    fn finish(&self) {
        for (_, bar) in &self.bars {
            bar.finish();
        }
        if let Some(spinner) = &self.verifying {
            spinner.finish_with_message("verified");
        }
    }
}

impl Progress for Bars {
    fn start(&mut self, totals: Counts) {
        let style = ProgressStyle::with_template(
            "{prefix:>18} [{bar:40}] {pos:>8}/{len:8} {elapsed_precise}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let sections = [
            (Section::Users, "users", totals.users),
            (Section::Messages, "messages", totals.messages),
            (Section::Follows, "follows", totals.follows),
        ];
        for (section, name, total) in sections {
            let bar = self.multi.add(ProgressBar::new(total));
            bar.set_style(style.clone());
            bar.set_prefix(format!("{} {name}", self.verb));
            self.bars.push((section, bar));
        }
    }

    fn advance(&mut self, section: Section, n: u64) {
        if let Some((_, bar)) = self.bars.iter().find(|(s, _)| *s == section) {
            bar.inc(n);
        }
    }

    fn verifying(&mut self) {
        let spinner = self.multi.add(ProgressBar::new_spinner());
        spinner.set_message("verifying (fingerprints of both sides)…");
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        self.verifying = Some(spinner);
    }
}
