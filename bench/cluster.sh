#!/usr/bin/env bash
# The cluster backend's pipeline rates against tansu 0.6 (one host, two hosts
# sharing the partitions, no emits), beside the embedded pipeline in the same
# run: tests/all/cluster_bench.rs, which prints the figures. Run by hand from
# the repository root; WEIR_CLUSTER_BENCH_RECORDS sets the input size (20000).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p weir
exec cargo test --release -p weir-tests --test all -- --ignored --nocapture \
  cluster_bench::pipeline_rates_through_the_cluster_backend
