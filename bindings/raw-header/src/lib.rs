//! Nothing to link: the check is `tests/raw_header.rs`
//! (`cargo test -p snap2p-raw-header`, run by ci/steps/10-rust.sh).
