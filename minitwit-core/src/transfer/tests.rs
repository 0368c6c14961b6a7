//! Transfer tests against the in-memory reference store: round trips are exact, bad
//! files fail clearly and write nothing, non-empty targets are refused.

#![allow(clippy::unwrap_used)] // tests: a failure should panic with the error
use super::*;
use crate::model::{NewMessage, NewUser};
use crate::testkit::MemoryStore;
use crate::{Email, MessageId, MessageText, Username};

fn empty() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// A store with a bit of everything: a disabled user, flagged and non-ASCII messages,
/// follows and latest.
async fn populated() -> Arc<dyn Store> {
    let store = empty();
    let mut ids = Vec::new();
    for name in ["alice", "Roger Histand", "ævar", "dan"] {
        let user = NewUser {
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{}@example.com", name.replace(' ', "."))).unwrap(),
            pw_hash: format!("$argon2id$v=19$hash-of-{name}"),
        };
        ids.push(store.create_user(user).await.unwrap().id);
    }
    store.set_disabled(ids[3], true).await.unwrap();
    for (i, text) in
        ["hello", "<b>&\"quoted\"</b>", "Grüße, 世界 🎉", "line\nbreak", "x"].iter().enumerate()
    {
        let author_id = ids[i % ids.len()];
        let text = MessageText::parse(text).unwrap();
        let id =
            store.add_message(NewMessage { author_id, text, pub_date: 1_000 + i as i64 }).await;
        if i % 2 == 1 {
            store.set_flagged(id.unwrap(), true).await.unwrap();
        }
    }
    store.follow(ids[0], ids[1]).await.unwrap();
    store.follow(ids[1], ids[0]).await.unwrap();
    store.follow(ids[2], ids[0]).await.unwrap();
    store.set_latest(25_922).await.unwrap();
    store
}

fn small_chunks() -> TransferOptions {
    TransferOptions { chunk_size: 2, ..TransferOptions::default() }
}

async fn export_bytes(store: &Arc<dyn Store>) -> Vec<u8> {
    let mut out = Vec::new();
    export(store, &mut out, small_chunks(), &mut ()).await.unwrap();
    out
}

async fn all_records(store: &Arc<dyn Store>) -> Vec<Record> {
    let mut reader = StoreReader::new(Arc::clone(store), 3);
    let mut records = Vec::new();
    while let Some(chunk) = reader.next().await.unwrap() {
        records.extend(chunk.into_records());
    }
    records
}

async fn import_bytes(store: &Arc<dyn Store>, bytes: &[u8]) -> TransferResult<Fingerprint> {
    import(store, &bytes.to_vec(), small_chunks(), &mut ()).await
}

#[tokio::test]
async fn export_then_import_is_exact() {
    let source = populated().await;
    let bytes = export_bytes(&source).await;
    let target = empty();
    let imported = import_bytes(&target, &bytes).await.unwrap();
    assert_eq!(imported, fingerprint(&source).await.unwrap());
    assert_eq!(fingerprint(&target).await.unwrap(), imported);
    assert_eq!(all_records(&target).await, all_records(&source).await);
    assert_eq!(imported.counts, Counts { users: 4, messages: 5, follows: 3, flagged: 2 });
    assert_eq!(imported.latest, Some(25_922));
}

#[tokio::test]
async fn the_file_is_versioned_json_lines_with_a_trailer() {
    let bytes = export_bytes(&populated().await).await;
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["format"], "minitwit-export");
    assert_eq!(lines[0]["version"], 1);
    assert_eq!(lines[1]["type"], "user");
    assert_eq!(lines[1]["pw_hash"], "$argon2id$v=19$hash-of-alice");
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["counts"]["messages"], 5);
    assert_eq!(end["checksum"].as_str().unwrap().len(), 64);
    assert_eq!(lines.len(), 1 + 4 + 5 + 3 + 1 + 1);
}

#[tokio::test]
async fn copy_is_exact_and_an_empty_store_copies_too() {
    let source = populated().await;
    let target = empty();
    let copied = copy(&source, &target, small_chunks(), &mut ()).await.unwrap();
    assert_eq!(copied, fingerprint(&target).await.unwrap());
    assert_eq!(all_records(&target).await, all_records(&source).await);

    let nothing = copy(&empty(), &empty(), small_chunks(), &mut ()).await.unwrap();
    assert_eq!(nothing.counts, Counts::default());
    assert_eq!(nothing.latest, None);
}

#[tokio::test]
async fn a_non_empty_target_is_refused_unless_allowed() {
    let source = populated().await;
    let target = populated().await;
    let before = fingerprint(&target).await.unwrap();
    let err = copy(&source, &target, small_chunks(), &mut ()).await.unwrap_err();
    assert!(matches!(err, TransferError::TargetNotEmpty(_)), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    let err = import_bytes(&target, &export_bytes(&source).await).await.unwrap_err();
    assert!(matches!(err, TransferError::TargetNotEmpty(_)), "{err}");
    assert_eq!(fingerprint(&target).await.unwrap(), before, "nothing written");

    let only_latest = empty();
    only_latest.set_latest(1).await.unwrap();
    let err = copy(&source, &only_latest, small_chunks(), &mut ()).await.unwrap_err();
    assert!(matches!(err, TransferError::TargetNotEmpty(_)), "{err}");

    let allowed = TransferOptions { allow_non_empty: true, ..small_chunks() };
    let clash = copy(&source, &target, allowed, &mut ()).await.unwrap_err();
    assert!(matches!(clash, TransferError::Store(_)), "colliding ids: {clash}");
}

#[tokio::test]
async fn truncated_files_are_detected_and_write_nothing() {
    let bytes = export_bytes(&populated().await).await;
    let text = String::from_utf8(bytes).unwrap();
    let without_trailer = &text[..text.trim_end().rfind('\n').unwrap() + 1];
    let mid_line = &text[..text.len() / 2];
    for cut in [without_trailer, mid_line, ""] {
        let target = empty();
        let err = import_bytes(&target, cut.as_bytes()).await.unwrap_err();
        assert!(
            matches!(err, TransferError::Truncated(_) | TransferError::NotAnExport(_)),
            "{err}"
        );
        assert_eq!(target.counts().await.unwrap(), Counts::default());
    }
    let err = check_file(without_trailer.as_bytes()).await.unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[tokio::test]
async fn garbled_files_are_rejected_with_the_line() {
    let text = String::from_utf8(export_bytes(&populated().await).await).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let with_line = |index: usize, replacement: &str| {
        let mut edited: Vec<&str> = lines.clone();
        edited[index] = replacement;
        edited.join("\n") + "\n"
    };
    let edited_text = text.replacen("hello", "HELLO", 1);
    let not_json = with_line(2, "{not json");
    let swapped = with_line(2, lines[1]);
    let cases = [
        (edited_text.as_str(), "trailer says"),
        (not_json.as_str(), "line 3"),
        (swapped.as_str(), "out of export order"),
    ];
    for (file, expected) in cases {
        let target = empty();
        let err = import_bytes(&target, file.as_bytes()).await.unwrap_err();
        assert!(matches!(err, TransferError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err} should mention {expected}");
        assert_eq!(target.counts().await.unwrap(), Counts::default());
    }
}

#[tokio::test]
async fn foreign_files_and_future_versions_are_named() {
    let err = check_file(&b"id,name\n1,alice\n"[..]).await.unwrap_err();
    assert!(matches!(err, TransferError::NotAnExport(_)), "{err}");
    let future = b"{\"format\":\"minitwit-export\",\"version\":2}\n";
    let err = check_file(&future[..]).await.unwrap_err();
    assert!(matches!(err, TransferError::UnsupportedVersion(2)), "{err}");
}

#[tokio::test]
async fn verification_fails_loudly_on_a_difference() {
    let source = populated().await;
    let target = empty();
    copy(&source, &target, small_chunks(), &mut ()).await.unwrap();
    target.set_flagged(MessageId(1), true).await.unwrap();
    let expected = fingerprint(&source).await.unwrap();
    let err = verify(&target, None, &expected).await.unwrap_err();
    assert!(err.to_string().starts_with("verification failed"), "{err}");
}
