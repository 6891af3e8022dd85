//! `cargo run -p snap2p-uniffi --bin uniffi-bindgen -- generate --library <lib> --language kotlin|swift --out-dir <dir>`
fn main() {
    uniffi::uniffi_bindgen_main()
}
