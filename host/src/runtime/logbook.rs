//! [`Logbook`]: the last lines one processor's guests logged (the `log`
//! import) and printed (stdout and stderr), in a bounded ring kept in memory
//! for `weir logs` and `GET /processors/{name}/logs`. The ring holds at most
//! [`LOGBOOK_LINES`] lines of at most [`MAX_LINE_BYTES`] each, dropping the
//! oldest (and counting them), so a chatty guest costs bounded memory. Each
//! line carries the version and input partition that wrote it and a sequence
//! number, the cursor a follower reads from.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::wire::{LogLine, LogPage};

/// Lines a logbook keeps.
pub const LOGBOOK_LINES: usize = 10_000;
/// Bytes of one line kept; the rest is cut, marked with `…`.
pub const MAX_LINE_BYTES: usize = 4096;
/// Lines one read returns at most.
pub const MAX_PAGE_LINES: usize = 1000;

/// Which lines a read wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only lines numbered `from` or later.
    pub from: Option<u64>,
    pub since_ms: Option<i64>,
    pub version: Option<String>,
    pub partition: Option<u32>,
    pub limit: Option<usize>,
}

impl LogFilter {
    fn wants(&self, line: &LogLine) -> bool {
        self.from.is_none_or(|f| line.seq >= f)
            && self.since_ms.is_none_or(|s| line.at_ms >= s)
            && self.version.as_ref().is_none_or(|v| &line.version == v)
            && self.partition.is_none_or(|p| line.partition == Some(p))
    }
}

#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    dropped: u64,
}

/// One processor's recent guest output.
#[derive(Debug)]
pub struct Logbook {
    ring: Mutex<Ring>,
    /// The next sequence number: followers wait for it to move.
    next: watch::Sender<u64>,
}

impl Default for Logbook {
    fn default() -> Logbook {
        Logbook {
            ring: Mutex::new(Ring::default()),
            next: watch::Sender::new(0),
        }
    }
}

impl Logbook {
    /// Takes a line (cut to [`MAX_LINE_BYTES`]), dropping the oldest when full.
    pub fn push(
        &self,
        version: &str,
        partition: Option<u32>,
        stream: &str,
        level: &str,
        message: &str,
    ) {
        let message = if message.len() > MAX_LINE_BYTES {
            let mut end = MAX_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &message[..end])
        } else {
            message.to_string()
        };
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let seq = *self.next.borrow();
        if ring.lines.len() == LOGBOOK_LINES {
            ring.lines.pop_front();
            ring.dropped += 1;
        }
        ring.lines.push_back(LogLine {
            seq,
            at_ms: crate::log::now_ms(),
            version: version.to_string(),
            partition,
            stream: stream.to_string(),
            level: level.to_string(),
            message,
        });
        // Under the ring's lock, so sequence numbers follow the ring's order.
        self.next.send_replace(seq + 1);
    }

    /// The lines `filter` wants, oldest first, at most its limit (and
    /// [`MAX_PAGE_LINES`]).
    pub fn read(&self, filter: &LogFilter) -> LogPage {
        let limit = filter.limit.unwrap_or(MAX_PAGE_LINES).min(MAX_PAGE_LINES);
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines = Vec::new();
        let mut next = *self.next.borrow();
        for line in ring.lines.iter().filter(|l| filter.wants(l)) {
            if lines.len() == limit {
                next = line.seq;
                break;
            }
            lines.push(line.clone());
        }
        LogPage {
            lines,
            next: next.max(filter.from.unwrap_or(0)),
            dropped: ring.dropped,
        }
    }

    /// Like [`Logbook::read`], but with nothing to return waits up to `wait`
    /// for a line the filter wants.
    pub async fn follow(&self, filter: &LogFilter, wait: Duration) -> LogPage {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = self.next.subscribe();
        loop {
            seen.mark_unchanged();
            let page = self.read(filter);
            if !page.lines.is_empty() {
                return page;
            }
            match tokio::time::timeout_at(deadline, seen.changed()).await {
                Ok(Ok(())) => continue,
                _ => return page,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines_and_counts_the_dropped() {
        let book = Logbook::default();
        for i in 0..LOGBOOK_LINES + 5 {
            book.push("v1", Some(0), "log", "info", &format!("line {i}"));
        }
        let page = book.read(&LogFilter::default());
        assert_eq!(page.dropped, 5);
        assert_eq!(page.lines.len(), MAX_PAGE_LINES);
        assert_eq!(page.lines[0].message, "line 5");
        assert_eq!(page.lines[0].seq, 5);
        assert_eq!(page.next, page.lines.last().unwrap().seq + 1);
        let rest = book.read(&LogFilter {
            from: Some(page.next),
            ..LogFilter::default()
        });
        assert_eq!(rest.lines[0].seq, page.next);
    }

    #[test]
    fn filters_pick_version_partition_and_cursor() {
        let book = Logbook::default();
        book.push("v1", Some(0), "log", "info", "a");
        book.push("v2", Some(1), "stdout", "info", "b");
        book.push("v2", Some(0), "stderr", "warn", "c");
        let messages = |filter: LogFilter| -> Vec<String> {
            book.read(&filter)
                .lines
                .into_iter()
                .map(|l| l.message)
                .collect()
        };
        let v2 = LogFilter {
            version: Some("v2".into()),
            ..LogFilter::default()
        };
        assert_eq!(messages(v2), ["b", "c"]);
        let p0 = LogFilter {
            partition: Some(0),
            ..LogFilter::default()
        };
        assert_eq!(messages(p0), ["a", "c"]);
        let after = LogFilter {
            from: Some(2),
            ..LogFilter::default()
        };
        assert_eq!(messages(after), ["c"]);
        let empty = book.read(&LogFilter {
            from: Some(3),
            ..LogFilter::default()
        });
        assert!(empty.lines.is_empty());
        assert_eq!(empty.next, 3);
    }

    #[test]
    fn a_long_line_is_cut_on_a_character_boundary() {
        let book = Logbook::default();
        book.push("v", None, "log", "info", &"é".repeat(MAX_LINE_BYTES));
        let line = &book.read(&LogFilter::default()).lines[0];
        assert!(line.message.ends_with('…'));
        assert!(line.message.len() <= MAX_LINE_BYTES + '…'.len_utf8());
    }

    #[tokio::test]
    async fn a_follower_wakes_for_a_new_line() {
        let book = std::sync::Arc::new(Logbook::default());
        let writer = book.clone();
        let wrote = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.push("v", Some(0), "log", "info", "late");
        });
        let page = book
            .follow(&LogFilter::default(), Duration::from_secs(10))
            .await;
        wrote.await.unwrap();
        assert_eq!(page.lines[0].message, "late");
    }
}
