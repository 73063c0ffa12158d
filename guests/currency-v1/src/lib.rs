//! `currency-v1`: the deliberately buggy first version: it divides by the rate where it
//! should multiply, so every converted amount is wrong. `currency-v2` is the fix,
//! for deploy-and-rewind demos.
//! Converts each order to US cents and emits it to `orders-usd`.

use weir_guest::{Batch, Config, Failure, Processor};

struct Currency;

impl Processor for Currency {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "orders-usd");
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        orders::emit_converted(
            batch,
            &orders::output_topic(),
            |amount_cents, usd_per_mille| amount_cents * 1000 / usd_per_mille,
        )
    }
}

weir_guest::export_processor!(Currency);
