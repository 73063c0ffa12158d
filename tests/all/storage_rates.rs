//! Append rates under each durability policy, printed, never asserted (timed
//! assertions are flaky on a shared machine). Run with
//! `cargo test --release -p weir-tests --test all storage_rates -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use weir::log::{Durability, Log, Record, TopicConfig};

fn rate(
    durability: Durability,
    producers: usize,
    per_append: usize,
    budget: Duration,
) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let config = TopicConfig::with_partitions(1).durability(durability);
    log.create_topic("t", config).unwrap();
    let records: Vec<Record> = (0..per_append)
        .map(|_| Record::value(vec![7u8; 100]))
        .collect();
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..producers)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < budget {
                        log.append("t", 0, &records).unwrap();
                        n += per_append as u64;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    (total as f64 / start.elapsed().as_secs_f64(), total)
}

#[test]
#[ignore = "a measurement, not a check"]
fn append_rates_by_durability_policy() {
    let budget = Duration::from_millis(700);
    for (name, durability) in [
        ("never", Durability::Never),
        ("interval(1000)", Durability::Interval { ms: 1000 }),
        ("always", Durability::Always),
    ] {
        for producers in [1, 8, 64] {
            for per_append in [1, 100] {
                let (rate, total) = rate(durability, producers, per_append, budget);
                println!(
                    "{name:>15} producers={producers:>2} records/append={per_append:>3}: {rate:>12.0} rec/s ({total} records, 100 B)"
                );
            }
        }
    }
}
