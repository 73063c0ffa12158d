//! A topic's id: a random UUID given to the topic when it is created and kept
//! in `topic.id` beside `topic.json`, so it stays the same across restarts
//! and changes when a topic is deleted and created again under the same name
//! (Kafka clients name topics by id in Fetch v13+ and tell a recreated topic
//! from the old one by it). A topic created before ids existed gets one the
//! first time the log opens it.

use std::path::Path;

use uuid::Uuid;

use super::LogError;
use crate::durable;

const ID_FILE: &str = "topic.id";

/// Writes a fresh id into the topic directory `dir` (durably: it must be
/// there before `topic.json` makes the topic exist).
pub fn create(dir: &Path) -> Result<Uuid, LogError> {
    let id = Uuid::new_v4();
    let path = dir.join(ID_FILE);
    durable::replace(&path, id.hyphenated().to_string().as_bytes())
        .map_err(|e| LogError::io(&path, e))?;
    Ok(id)
}

/// The id kept in `dir`, or a fresh one written there if it has none.
pub fn load_or_create(dir: &Path) -> Result<Uuid, LogError> {
    let path = dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Uuid::parse_str(text.trim()).map_err(|_| LogError::Corrupt {
            path,
            position: 0,
            what: "not a topic id (a UUID)".to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir),
        Err(e) => Err(LogError::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_kept_and_a_fresh_directory_gets_another() {
        let dir = tempfile::tempdir().unwrap();
        let first = create(dir.path()).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), first);
    }

    #[test]
    fn a_garbled_id_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ID_FILE), "not a uuid").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("topic.id"), "{err}");
    }
}
