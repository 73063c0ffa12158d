//! Each processor's [`Logbook`] (what its guests logged and printed, for
//! `weir logs`): made when its guest is first loaded, shared by all its
//! versions, and dropped with the processor.

use std::sync::Arc;

use super::Supervisor;
use crate::runtime::Logbook;

impl Supervisor {
    /// `name`'s logbook: the guest output its versions write (`weir logs`),
    /// created on first use, and kept while the host runs.
    pub fn logbook(&self, name: &str) -> Arc<Logbook> {
        let mut books = self.logbooks.lock().unwrap_or_else(|e| e.into_inner());
        books.entry(name.to_string()).or_default().clone()
    }

    /// Drops the logbooks of processors that are gone, so a new processor of
    /// the same name starts with an empty one.
    pub(super) fn forget_logbooks(&self, names: &[&str]) {
        let mut books = self.logbooks.lock().unwrap_or_else(|e| e.into_inner());
        for name in names {
            books.remove(*name);
        }
    }
}
