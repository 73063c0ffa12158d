//! `running-totals`: for every order, updates its customer's totals in state
//! and emits them to `customer-totals` (or the topic named by the `output`
//! configuration key), keyed by customer, as
//! `{"customer": C, "orders": N, "amount_cents": S}`: the count and amount
//! after this order. A malformed order is dead-lettered.
//!
//! Unlike `order-totals`, whose per-batch sums a reader must add up, each
//! emitted record is the customer's running total; and since state commits
//! with the offset and is rewound with it, a replay after a fix recomputes the
//! same totals from the same point.

use orders::{Order, json_string};
use serde::{Deserialize, Serialize};
use weir_guest::{Batch, Config, Failure, FailureKind, Processor, state};

#[derive(Default, Serialize, Deserialize)]
struct Totals {
    orders: u64,
    amount_cents: i64,
}

struct RunningTotals;

impl Processor for RunningTotals {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "customer-totals");
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        for record in batch.records() {
            let order = Order::parse(record.value())
                .map_err(|e| record.fail(FailureKind::DeadLetter, e))?;
            let key = format!("customer/{}", order.customer);
            let mut totals: Totals = state::get_json(key.as_bytes()).unwrap_or_default();
            totals.orders += 1;
            totals.amount_cents += order.amount_cents;
            state::put_json(key.as_bytes(), &totals)
                .map_err(|e| record.fail(FailureKind::Fatal, e))?;
            let value = format!(
                r#"{{"customer":{},"orders":{},"amount_cents":{}}}"#,
                json_string(&order.customer),
                totals.orders,
                totals.amount_cents
            );
            weir_guest::emit(
                &topic,
                Some(order.customer.as_bytes()),
                value.as_bytes(),
                &[],
            )
            .map_err(|e| record.fail(FailureKind::Fatal, e))?;
        }
        Ok(())
    }
}

weir_guest::export_processor!(RunningTotals);
