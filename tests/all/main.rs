//! The integration tests, as one binary (as wasmtime's `tests/all/` does): each
//! module is one area, so wasmtime, axum and the host link once instead of once
//! per file. Run one area with a filter, e.g.
//! `cargo test --release -p weir-tests --test all storage::`.

mod api_docs;
mod cli_client;
mod cli_edges;
mod cluster;
mod cluster_bench;
mod cluster_exactly_once;
mod cluster_replay;
mod components;
mod dashboard;
mod deploy;
mod devloop;
mod diff;
mod embedded_api;
mod failures;
mod groups;
mod guest_logs;
mod guests_tested;
mod kafka_admin;
mod kafka_clients;
mod kafka_group_wire;
mod kafka_groups;
mod kafka_kip848;
mod kafka_kip848_wire;
mod kafka_listener;
mod kafka_records;
mod kafka_security;
mod kafka_tls;
mod kafka_transactions;
mod kafka_txn_wire;
mod leftovers;
mod librdkafka_suite;
mod membership;
mod operations;
mod pause;
mod pipeline;
mod polyglot;
mod process;
mod processors;
mod prometheus;
mod samples;
mod sandbox;
mod serve_kill;
mod serve_process;
mod service;
mod service_stress;
mod shutdown;
mod state;
mod state_crash;
mod storage;
mod storage_faults;
mod storage_rates;
mod topic_settings;
