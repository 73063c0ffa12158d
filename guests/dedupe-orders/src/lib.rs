//! `dedupe-orders`: idempotent processing on the SDK's [`Dedupe`] helper.
//! Forwards every order to `orders-unique` (or the `output` configuration
//! key) the first time its id is seen within `ttl_ms` (default one hour, in
//! the records' own timestamps) and drops the repeats: orders a producer sent
//! twice, or a batch redelivered after a crash. Expired ids are forgotten a
//! few at a time, every batch. A malformed order is dead-lettered.

use std::cell::Cell;

use orders::Order;
use weir_guest::state::Dedupe;
use weir_guest::{Batch, Config, Failure, FailureKind, Processor};

thread_local! {
    static TTL_MS: Cell<i64> = const { Cell::new(3_600_000) };
}

/// Expired ids forgotten per batch at most.
const EXPIRE_PER_BATCH: u32 = 1000;

struct DedupeOrders;

impl Processor for DedupeOrders {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "orders-unique");
        if let Some(ttl) = config.get("ttl_ms") {
            let ttl = ttl
                .parse()
                .map_err(|_| format!("ttl_ms must be a number, got {ttl:?}"))?;
            TTL_MS.with(|t| t.set(ttl));
        }
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        let seen = Dedupe::new("orders", TTL_MS.with(Cell::get));
        for record in batch.records() {
            let order = Order::parse(record.value())
                .map_err(|e| record.fail(FailureKind::DeadLetter, e))?;
            let first = seen
                .first_seen(order.id.to_string().as_bytes(), record.timestamp())
                .map_err(|e| record.fail(FailureKind::Fatal, e))?;
            if first {
                weir_guest::emit(&topic, record.key(), record.value(), &[])
                    .map_err(|e| record.fail(FailureKind::Fatal, e))?;
            }
        }
        if let Some(last) = batch.records().last() {
            seen.expire(last.timestamp(), EXPIRE_PER_BATCH);
        }
        Ok(())
    }
}

weir_guest::export_processor!(DedupeOrders);
