//! The order record that `weir produce --generate` writes and the sample guests
//! read: one JSON object per record value.

use serde::Deserialize;

/// One order, as produced by the host's generator.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: u64,
    pub customer: String,
    pub amount_cents: i64,
    pub currency: String,
    pub country: String,
}

impl Order {
    /// Parses a record value; the error message says what was wrong.
    pub fn parse(value: &[u8]) -> Result<Order, String> {
        serde_json::from_slice(value).map_err(|e| format!("malformed order: {e}"))
    }
}

/// Escapes `s` as a JSON string literal (with the quotes).
pub fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// US-dollar value of one unit of `currency`, in thousandths of a dollar.
pub fn usd_per_mille(currency: &str) -> Option<i64> {
    match currency {
        "USD" => Some(1000),
        "EUR" => Some(1080),
        "GBP" => Some(1270),
        "JPY" => Some(7),
        _ => None,
    }
}

/// The body of the `currency-v1` / `currency-v2` guests: converts every order
/// with `convert(amount_cents, usd_per_mille)` and emits the result, keyed by
/// order id, to `orders-usd` (or the `output` configuration key, passed as
/// `topic`). An unknown currency or a malformed order is dead-lettered.
pub fn emit_converted(
    batch: &weir_guest::Batch,
    topic: &str,
    convert: fn(i64, i64) -> i64,
) -> Result<(), weir_guest::Failure> {
    use weir_guest::FailureKind;
    for record in batch.records() {
        let order =
            Order::parse(record.value()).map_err(|e| record.fail(FailureKind::DeadLetter, e))?;
        let rate = usd_per_mille(&order.currency).ok_or_else(|| {
            record.fail(
                FailureKind::DeadLetter,
                format!("unknown currency {}", order.currency),
            )
        })?;
        let value = format!(
            r#"{{"order_id":{},"customer":{},"usd_cents":{}}}"#,
            order.id,
            json_string(&order.customer),
            convert(order.amount_cents, rate)
        );
        weir_guest::emit(
            topic,
            Some(order.id.to_string().as_bytes()),
            value.as_bytes(),
            &[],
        )
        .map_err(|e| record.fail(FailureKind::Fatal, e))?;
    }
    Ok(())
}

thread_local! {
    static OUTPUT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Remembers the `output` configuration key (or `default`) for [`output_topic`].
pub fn configure_output(config: &weir_guest::Config, default: &str) {
    let topic = config.get("output").unwrap_or(default).to_string();
    OUTPUT.with(|o| *o.borrow_mut() = topic);
}

/// The topic chosen by [`configure_output`].
pub fn output_topic() -> String {
    OUTPUT.with(|o| o.borrow().clone())
}
