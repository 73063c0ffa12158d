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

#[cfg(test)]
mod tests {
    use weir_guest::FailureKind;
    use weir_guest::testing::{Harness, TestBatch};

    use super::RunningTotals;

    fn order(id: u64, customer: &str, cents: i64) -> String {
        format!(
            r#"{{"id":{id},"customer":"{customer}","amount_cents":{cents},"currency":"EUR","country":"DE"}}"#
        )
    }

    #[test]
    fn each_order_emits_its_customers_running_total_and_keeps_it_in_state() {
        let mut harness = Harness::new().config("output", "totals");
        let batch = TestBatch::new()
            .value(order(1, "c1", 100))
            .value(order(2, "c2", 5))
            .value(order(3, "c1", 250));
        let run = harness.run::<RunningTotals>(&batch);
        assert!(run.init.is_ok() && run.result.is_ok(), "{run:?}");
        let values: Vec<String> = run.emits.iter().map(|e| e.value_str()).collect();
        assert_eq!(
            values,
            [
                r#"{"customer":"c1","orders":1,"amount_cents":100}"#,
                r#"{"customer":"c2","orders":1,"amount_cents":5}"#,
                r#"{"customer":"c1","orders":2,"amount_cents":350}"#,
            ]
        );
        assert!(run.emits.iter().all(|e| e.topic == "totals"));
        assert_eq!(run.emits[2].key.as_deref(), Some(b"c1".as_slice()));
        assert_eq!(
            harness.state_str("customer/c1").as_deref(),
            Some(r#"{"orders":2,"amount_cents":350}"#)
        );

        // The next batch starts from the committed totals.
        let run = harness.run::<RunningTotals>(&TestBatch::new().value(order(4, "c2", 1)));
        assert_eq!(
            run.emits[0].value_str(),
            r#"{"customer":"c2","orders":2,"amount_cents":6}"#
        );
    }

    #[test]
    fn a_malformed_order_is_dead_lettered_and_its_batch_changes_no_state() {
        let mut harness =
            Harness::new().with_state("customer/c1", r#"{"orders":1,"amount_cents":7}"#);
        let batch = TestBatch::new().value(order(1, "c1", 3)).value("not json");
        let run = harness.run::<RunningTotals>(&batch);
        let failure = run.result.expect_err("the second record fails");
        assert_eq!(failure.index, 1);
        assert!(matches!(failure.kind, FailureKind::DeadLetter));
        assert!(
            failure.message.contains("malformed order"),
            "{}",
            failure.message
        );
        assert_eq!(run.emits.len(), 1, "the first record's emit was made");
        assert_eq!(
            harness.state_str("customer/c1").as_deref(),
            Some(r#"{"orders":1,"amount_cents":7}"#),
            "a failed call's state changes are dropped"
        );
    }
}
