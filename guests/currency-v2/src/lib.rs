//! `currency-v2`: the fixed version of `currency-v1`: converts with the right formula.
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
            |amount_cents, usd_per_mille| amount_cents * usd_per_mille / 1000,
        )
    }
}

weir_guest::export_processor!(Currency);
