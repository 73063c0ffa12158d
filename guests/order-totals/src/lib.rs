//! `order-totals`: per-customer totals of the orders in each batch, emitted to
//! `customer-totals` (or the topic named by the `output` configuration key).
//!
//! Every batch runs in a fresh instance, so the guest cannot keep a running sum
//! in memory (and a sum kept there would be wrong after a replay anyway). It emits
//! one record per customer and batch instead, keyed by customer, whose value holds
//! that batch's order count and amount: summing a customer's records gives the
//! running total. A malformed order is skipped with a warning.

use std::collections::BTreeMap;

use orders::{Order, json_string};
use weir_guest::{Batch, Config, Failure, FailureKind, Level, Processor};

struct OrderTotals;

impl Processor for OrderTotals {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "customer-totals");
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        let mut totals: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for record in batch.records() {
            match Order::parse(record.value()) {
                Ok(order) => {
                    let entry = totals.entry(order.customer).or_default();
                    entry.0 += 1;
                    entry.1 += order.amount_cents;
                }
                Err(e) => weir_guest::log(
                    Level::Warn,
                    &format!("skipping offset {}: {e}", record.offset()),
                ),
            }
        }
        for (customer, (orders, cents)) in totals {
            let value = format!(
                r#"{{"customer":{},"orders":{orders},"amount_cents":{cents}}}"#,
                json_string(&customer)
            );
            weir_guest::emit(&topic, Some(customer.as_bytes()), value.as_bytes(), &[]).map_err(
                // Nothing of this batch is emitted yet, so fail it from the start.
                |message| Failure {
                    index: 0,
                    kind: FailureKind::Fatal,
                    message,
                },
            )?;
        }
        Ok(())
    }
}

weir_guest::export_processor!(OrderTotals);
