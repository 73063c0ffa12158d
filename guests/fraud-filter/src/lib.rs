//! `fraud-filter`: emits suspicious orders to the `alerts` topic (or the topic
//! named by the `output` configuration key).
//!
//! An order is suspicious when it is large (at least 5,000.00 in any currency), or
//! when it is at least 2,000.00 and paid in a currency that is not its country's.
//! The alert is keyed by customer and its value is a JSON object with a fixed
//! field order, so the JavaScript and Python versions produce identical bytes.
//! A malformed order is sent to the dead-letter topic.

use orders::{Order, json_string};
use weir_guest::{Batch, Config, Failure, FailureKind, Processor};

struct FraudFilter;

const LARGE_CENTS: i64 = 500_000;
const FOREIGN_CENTS: i64 = 200_000;

fn home_currency(country: &str) -> &'static str {
    match country {
        "US" => "USD",
        "GB" => "GBP",
        "JP" => "JPY",
        _ => "EUR",
    }
}

fn reason(order: &Order) -> Option<&'static str> {
    if order.amount_cents >= LARGE_CENTS {
        Some("large-amount")
    } else if order.amount_cents >= FOREIGN_CENTS && order.currency != home_currency(&order.country)
    {
        Some("foreign-currency")
    } else {
        None
    }
}

impl Processor for FraudFilter {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "alerts");
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        for record in batch.records() {
            let order = Order::parse(record.value())
                .map_err(|e| record.fail(FailureKind::DeadLetter, e))?;
            let Some(reason) = reason(&order) else {
                continue;
            };
            let alert = format!(
                r#"{{"order_id":{},"customer":{},"amount_cents":{},"currency":{},"reason":"{}"}}"#,
                order.id,
                json_string(&order.customer),
                order.amount_cents,
                json_string(&order.currency),
                reason
            );
            weir_guest::emit(
                &topic,
                Some(order.customer.as_bytes()),
                alert.as_bytes(),
                &[],
            )
            .map_err(|e| record.fail(FailureKind::Fatal, e))?;
        }
        Ok(())
    }
}

weir_guest::export_processor!(FraudFilter);
