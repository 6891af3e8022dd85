//! Output: human lines on a terminal, JSON lines for scripts, and errors that name the
//! protocol's code (name and number) with a sentence a person understands.

use serde_json::{json, Value};
use snap2p::{Error, ErrorCode};

use crate::Global;

pub type R<T> = Result<T, Error>;

/// An error raised by the CLI itself (bad file, bad argument), mapped onto the closest
/// protocol code so scripts see one vocabulary.
pub fn err(code: ErrorCode, msg: impl Into<String>) -> Error {
    Error::new(code, msg)
}

pub fn error_json(e: &Error) -> Value {
    json!({
        "code": e.code.as_u64(),
        "name": e.code.name(),
        "description": e.code.describe(),
        "message": e.message,
    })
}

/// `error: ERR_INVITE_REQUIRED (18): this node requires an invite token …` plus the
/// detail the core gave, on stderr (JSON: `{"event":"error",…}` on stdout).
pub fn print_error(g: &Global, e: &Error) {
    if g.json {
        println!("{}", json!({"event": "error", "error": error_json(e)}));
    }
    eprintln!("error: {}: {}", e.code, e.code.describe());
    if !e.message.is_empty() && e.message != e.code.describe() {
        eprintln!("  detail: {}", e.message);
    }
}

/// One event: `text` for people, `value` (with `event` = `kind`) for `--json`.
pub fn event(g: &Global, kind: &str, text: impl AsRef<str>, mut value: Value) {
    if g.json {
        if let Value::Object(m) = &mut value {
            m.insert("event".into(), Value::String(kind.into()));
        }
        println!("{value}");
    } else {
        println!("{}", text.as_ref());
    }
}

/// Informational line for people only (stderr, so stdout stays clean for piping).
pub fn note(g: &Global, text: impl AsRef<str>) {
    if !g.json {
        eprintln!("{}", text.as_ref());
    }
}
