//! The generated order stream: deterministic JSON orders keyed by customer, the
//! input of `weir demo`, `weir produce --generate` and the benchmarks. The fields
//! match `guests/orders` (and the JS and Python helpers).

use crate::log::Record;

const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];
const COUNTRIES: [&str; 6] = ["DE", "FR", "US", "GB", "JP", "NL"];

/// A small, fast, deterministic generator (SplitMix64), so the same seed always
/// yields the same orders.
#[derive(Debug, Clone)]
pub struct Orders {
    state: u64,
    next_id: u64,
}

impl Orders {
    /// Orders numbered from `first_id`, drawn from `seed`.
    pub fn new(seed: u64, first_id: u64) -> Orders {
        Orders {
            state: seed,
            next_id: first_id,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Iterator for Orders {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let id = self.next_id;
        self.next_id += 1;
        let customer = format!("c-{:03}", self.next_u64() % 200);
        // Mostly small orders, with a long tail so some trip the fraud rules.
        let amount_cents = match self.next_u64() % 100 {
            0..=89 => 100 + self.next_u64() % 20_000,
            90..=97 => 20_000 + self.next_u64() % 300_000,
            _ => 300_000 + self.next_u64() % 700_000,
        };
        let currency = CURRENCIES[(self.next_u64() % 4) as usize];
        let country = COUNTRIES[(self.next_u64() % 6) as usize];
        let value = format!(
            r#"{{"id":{id},"customer":"{customer}","amount_cents":{amount_cents},"currency":"{currency}","country":"{country}"}}"#
        );
        Some(Record::keyed(customer, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_orders() {
        let a: Vec<Record> = Orders::new(7, 0).take(50).collect();
        let b: Vec<Record> = Orders::new(7, 0).take(50).collect();
        assert_eq!(a, b);
        let v: serde_json::Value = serde_json::from_slice(&a[3].value).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(
            a[3].key.as_deref(),
            v["customer"].as_str().map(str::as_bytes)
        );
    }
}
