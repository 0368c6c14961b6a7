//! Moving data: `export`, `import`, `copy` and `verify`, over core's [`transfer`]
//! module, with progress bars on a terminal. Files are written to a temporary name and
//! renamed when complete, so an interrupted export leaves no half-written file behind.
//! Files whose name ends in `.gz` are gzipped; `-` is standard output (export) or input
//! (verify).

use crate::cli::{CopyArgs, ExportArgs, ImportArgs, StoreOptions, VerifyArgs};
use crate::store_url::StoreUrl;
use anyhow::{Context, Result, bail};
use async_compression::tokio::bufread::GzipDecoder;
use async_compression::tokio::write::GzipEncoder;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use minitwit_core::transfer::{
    self, ExportSource, Fingerprint, Progress, Section, TransferOptions,
};
use minitwit_core::{Counts, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

/// The file name meaning standard output or input.
const STDIO: &str = "-";

/// Whether `path` names a gzipped file.
fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "gz")
}

/// `export --out FILE`: the whole store into a new file (or stdout).
pub async fn export(store: &Arc<dyn Store>, args: &ExportArgs, out: &mut impl Write) -> Result<()> {
    if args.out.as_os_str() == STDIO {
        let mut stdout = tokio::io::stdout();
        let fingerprint = export_into(store, &mut stdout, false).await?;
        // stdout carries the export: the summary goes to stderr.
        eprintln!("exported to standard output: {fingerprint}");
        return Ok(());
    }
    if !args.force && tokio::fs::try_exists(&args.out).await.unwrap_or(true) {
        bail!("{} exists; pass --force to replace it", args.out.display());
    }
    let partial = partial_path(&args.out)?;
    let written = write_export(store, &partial, is_gzip(&args.out)).await;
    let renamed = match written {
        Ok(fingerprint) => rename_durably(&partial, &args.out).await.map(|()| fingerprint),
        Err(err) => Err(err),
    };
    if renamed.is_err() {
        // Best effort: the error that matters is the one being returned.
        let _ = tokio::fs::remove_file(&partial).await;
    }
    writeln!(out, "exported to {}: {}", args.out.display(), renamed?)?;
    Ok(())
}

/// Renames the synced `partial` file to `path`, then syncs the directory, so the new
/// name survives a crash too.
async fn rename_durably(partial: &Path, path: &Path) -> Result<()> {
    tokio::fs::rename(partial, path)
        .await
        .with_context(|| format!("renaming the export to {}", path.display()))?;
    let parent = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = tokio::fs::File::open(parent)
        .await
        .with_context(|| format!("opening {} to sync it", parent.display()))?;
    dir.sync_all().await.with_context(|| format!("syncing the directory {}", parent.display()))
}

/// Writes the export into `path` (a new file only its owner may read: it holds every
/// password hash and email), gzipped if asked, and syncs it to disk.
async fn write_export(store: &Arc<dyn Store>, path: &Path, gzip: bool) -> Result<Fingerprint> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    let mut writer = BufWriter::new(file);
    let fingerprint = export_into(store, &mut writer, gzip).await?;
    writer.into_inner().sync_all().await.context("syncing the export file")?;
    Ok(fingerprint)
}

/// Writes the export into `out` (gzipped if asked) and flushes it, gzip trailer included.
async fn export_into<W: AsyncWrite + Unpin>(
    store: &Arc<dyn Store>,
    out: &mut W,
    gzip: bool,
) -> Result<Fingerprint> {
    let mut bars = Bars::new("exporting");
    let options = TransferOptions::default();
    let fingerprint = if gzip {
        let mut encoder = GzipEncoder::new(out);
        let fingerprint = transfer::export(store, &mut encoder, options, &mut bars).await?;
        encoder.shutdown().await.context("finishing the gzip stream")?;
        fingerprint
    } else {
        let fingerprint = transfer::export(store, &mut *out, options, &mut bars).await?;
        out.flush().await?;
        fingerprint
    };
    bars.finish();
    Ok(fingerprint)
}

/// An export file for reading, decompressed when its name ends in `.gz`; `-` is stdin.
async fn open_export(path: &Path) -> Result<Box<dyn AsyncBufRead + Unpin + Send>> {
    if path.as_os_str() == STDIO {
        return Ok(Box::new(BufReader::new(tokio::io::stdin())));
    }
    ExportFile(path.to_owned()).open().await.with_context(|| format!("opening {}", path.display()))
}

/// An export file named on the command line, read again from its start by each pass of
/// an import (check, write, and undo after a failure).
struct ExportFile(PathBuf);

#[async_trait::async_trait]
impl ExportSource for ExportFile {
    fn name(&self) -> String {
        self.0.display().to_string()
    }

    async fn open(&self) -> transfer::TransferResult<Box<dyn AsyncBufRead + Unpin + Send>> {
        let file = BufReader::new(tokio::fs::File::open(&self.0).await?);
        if !is_gzip(&self.0) {
            return Ok(Box::new(file));
        }
        let mut decoder = GzipDecoder::new(file);
        decoder.multiple_members(true);
        Ok(Box::new(BufReader::new(decoder)))
    }
}

/// `verify FILE`: reads the whole file and checks it, writing nothing anywhere.
pub async fn verify(args: &VerifyArgs, out: &mut impl Write) -> Result<()> {
    let fingerprint = transfer::check_file(open_export(&args.file).await?)
        .await
        .with_context(|| format!("{} is not a complete export", args.file.display()))?;
    writeln!(out, "{} is a complete export: {fingerprint}", args.file.display())?;
    Ok(())
}

/// `DIR/.NAME.partial-PID` next to `path`, so the final rename stays on one file system.
fn partial_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?
        .to_string_lossy();
    Ok(path.with_file_name(format!(".{name}.partial-{}", std::process::id())))
}

/// `import --in FILE`: checks the whole file, imports it, verifies the store; all or
/// nothing (see [`transfer::import`]). `--undo` removes the file's records after an
/// import of it that never ended.
pub async fn import(store: &Arc<dyn Store>, args: &ImportArgs, out: &mut impl Write) -> Result<()> {
    let options = TransferOptions { allow_non_empty: args.force, ..TransferOptions::default() };
    if args.input.as_os_str() == STDIO {
        bail!(
            "import reads its file more than once (checked first, then imported): save it to a file"
        );
    }
    let file = ExportFile(args.input.clone());
    if args.undo {
        transfer::undo_import(store, &file, options)
            .await
            .with_context(|| format!("undoing the import of {}", args.input.display()))?;
        writeln!(
            out,
            "removed the records of {} and the mark of the unfinished import",
            file.name()
        )?;
        return Ok(());
    }
    let mut bars = Bars::new("importing");
    let imported = transfer::import(store, &file, options, &mut bars)
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
