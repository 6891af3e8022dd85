//! Every shared vector file (`vectors/*.json`) against its schema
//! (`vectors/schema/<name>.schema.json`): the subset of JSON Schema those schemas use
//! (PROTOCOL.md §13), checked here as in the Node, Python, Kotlin and Swift suites. The
//! files' contents are recomputed by wire_vectors.rs, px1_codec.rs, locator_vectors.rs and
//! identity_vectors.rs; this checks their shape, so a second implementation can rely on it.

use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

fn read(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// A backtracking matcher for the schemas' patterns: anchors, literals, `\.`, classes with
// ranges, groups, and the quantifiers `*`, `+`, `{n}`.
#[derive(Debug)]
enum Atom {
    Char(char),
    Class(Vec<(char, char)>),
    Group(Vec<(Atom, usize, usize)>),
}

fn parse_seq(p: &[char], i: &mut usize) -> Vec<(Atom, usize, usize)> {
    let mut out = Vec::new();
    while *i < p.len() && p[*i] != ')' {
        let atom = match p[*i] {
            '^' | '$' => {
                *i += 1;
                continue;
            }
            '\\' => {
                *i += 2;
                Atom::Char(p[*i - 1])
            }
            '(' => {
                *i += 1;
                let g = parse_seq(p, i);
                *i += 1; // ')'
                Atom::Group(g)
            }
            '[' => {
                *i += 1;
                let mut ranges = Vec::new();
                while p[*i] != ']' {
                    let lo = p[*i];
                    if p[*i + 1] == '-' && p[*i + 2] != ']' {
                        ranges.push((lo, p[*i + 2]));
                        *i += 3;
                    } else {
                        ranges.push((lo, lo));
                        *i += 1;
                    }
                }
                *i += 1;
                Atom::Class(ranges)
            }
            c => {
                *i += 1;
                Atom::Char(c)
            }
        };
        let (min, max) = match p.get(*i) {
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('{') => {
                let end = p[*i..].iter().position(|&c| c == '}').unwrap() + *i;
                let n: usize = p[*i + 1..end].iter().collect::<String>().parse().unwrap();
                *i = end;
                (n, n)
            }
            _ => (1, 1),
        };
        if (min, max) != (1, 1) {
            *i += 1;
        }
        out.push((atom, min, max));
    }
    out
}

/// All positions after matching `seq` from `at`.
fn ends(seq: &[(Atom, usize, usize)], s: &[char], at: usize) -> Vec<usize> {
    let Some(((atom, min, max), rest)) = seq.split_first() else {
        return vec![at];
    };
    let mut out = Vec::new();
    let mut here = vec![at];
    let mut count = 0;
    loop {
        if count >= *min {
            for &h in &here {
                out.extend(ends(rest, s, h));
            }
        }
        if count == *max || here.is_empty() {
            break;
        }
        let mut next: Vec<usize> = here
            .iter()
            .flat_map(|&h| -> Vec<usize> {
                match atom {
                    Atom::Char(c) => (s.get(h) == Some(c)).then_some(h + 1).into_iter().collect(),
                    Atom::Class(r) => s
                        .get(h)
                        .filter(|c| r.iter().any(|(lo, hi)| lo <= *c && *c <= hi))
                        .map(|_| h + 1)
                        .into_iter()
                        .collect(),
                    Atom::Group(g) => ends(g, s, h).into_iter().filter(|&e| e > h).collect(),
                }
            })
            .collect();
        next.sort();
        next.dedup();
        here = next;
        count += 1;
    }
    out
}

fn matches(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let seq = parse_seq(&p, &mut 0);
    let s: Vec<char> = s.chars().collect();
    ends(&seq, &s, 0).contains(&s.len())
}

fn type_ok(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// The schema with every `{"$ref": "#/$defs/NAME"}` replaced by that definition of its
/// `$defs` (dropped); a reference to anything else is an error.
fn resolve(s: &Value) -> Result<Value, String> {
    fn go(s: &Value, defs: &Value, depth: usize) -> Result<Value, String> {
        if depth > 64 {
            return Err("$ref nested too deep (a cycle?)".into());
        }
        Ok(match s {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref") {
                    let r = r.as_str().unwrap_or_default();
                    let def = r.strip_prefix("#/$defs/").and_then(|name| defs.get(name));
                    return go(def.ok_or(format!("unresolved $ref {r}"))?, defs, depth + 1);
                }
                let mut out = serde_json::Map::new();
                for (k, x) in o.iter().filter(|(k, _)| *k != "$defs") {
                    out.insert(k.clone(), go(x, defs, depth + 1)?);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| go(x, defs, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            x => x.clone(),
        })
    }
    go(s, s.get("$defs").unwrap_or(&Value::Null), 0)
}

/// A schema file, its references resolved.
fn schema(name: &str) -> Value {
    resolve(&read(&format!("{DIR}/schema/{name}"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn validate(v: &Value, s: &Value, at: &str, errs: &mut Vec<String>) {
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap()).collect(),
            x => vec![x.as_str().unwrap()],
        };
        if !types.iter().any(|t| type_ok(v, t)) {
            errs.push(format!("{at}: not {t}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!("{at}: {v} not in enum"));
        }
    }
    if let (Some(p), Some(x)) = (s.get("pattern").and_then(Value::as_str), v.as_str()) {
        if !matches(p, x) {
            errs.push(format!("{at}: {x:.60} !~ {p}"));
        }
    }
    if let Some(n) = v.as_i64() {
        if s.get("minimum")
            .and_then(Value::as_i64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!("{at}: below minimum"));
        }
        if s.get("maximum")
            .and_then(Value::as_i64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: above maximum"));
        }
    }
    if let Some(o) = v.as_object() {
        let empty = serde_json::Map::new();
        let props = s
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for k in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !o.contains_key(k.as_str().unwrap()) {
                errs.push(format!("{at}: missing {k}"));
            }
        }
        for (k, x) in o {
            match (props.get(k), s.get("additionalProperties")) {
                (Some(ps), _) => validate(x, ps, &format!("{at}.{k}"), errs),
                (None, Some(Value::Bool(false))) => errs.push(format!("{at}: unexpected key {k}")),
                (None, Some(ap @ Value::Object(_))) => validate(x, ap, &format!("{at}.{k}"), errs),
                _ => {}
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(m) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < m {
                errs.push(format!("{at}: fewer than {m} items"));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, x) in a.iter().enumerate() {
                validate(x, items, &format!("{at}[{i}]"), errs);
            }
        }
    }
}

#[test]
fn the_pattern_matcher_matches_what_the_schemas_mean() {
    assert!(matches("^([0-9a-f]{2})*$", ""));
    assert!(matches("^([0-9a-f]{2})*$", "0a1b"));
    assert!(!matches("^([0-9a-f]{2})*$", "0a1"));
    assert!(!matches("^([0-9a-f]{2})*$", "0A"));
    assert!(matches("^[0-9a-f]{4}$", "beef"));
    assert!(!matches("^[0-9a-f]{4}$", "beefe"));
    assert!(matches("^ERR_[A-Z_]+$", "ERR_INVALID_MESSAGE"));
    assert!(!matches("^ERR_[A-Z_]+$", "ERR_"));
    assert!(matches("^[a-z][a-z0-9+.-]*$", "quic+v1.x-y"));
    assert!(matches("^[0-9a-f]{2}\\.wallet\\.json$", "ab.wallet.json"));
    assert!(!matches("^[0-9a-f]{2}\\.wallet\\.json$", "abxwallet.json"));
}

#[test]
fn every_vector_file_matches_its_schema() {
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    let mut schemas: Vec<String> = std::fs::read_dir(format!("{DIR}/schema"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .map(|f| f.replace(".schema.json", ".json"))
        .collect();
    schemas.sort();
    assert_eq!(files, schemas, "every vector file has a schema");
    for f in &files {
        let schema = schema(&f.replace(".json", ".schema.json"));
        let mut errs = Vec::new();
        validate(&read(&format!("{DIR}/{f}")), &schema, "$", &mut errs);
        assert!(errs.is_empty(), "{f}: {:#?}", &errs[..errs.len().min(10)]);
    }
    // And the validator notices what it should.
    let mut bad = read(&format!("{DIR}/messages.json"));
    bad["messages"][0].as_object_mut().unwrap().remove("t");
    bad["messages"][1]["types"]["att"] = "blob".into();
    bad["messages"][2]["cbor_hex"] = "A3".into();
    bad["extra"] = 1.into();
    let mut errs = Vec::new();
    validate(&bad, &schema("messages.schema.json"), "$", &mut errs);
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn the_validator_follows_defs_refs() {
    let mut bad = read(&format!("{DIR}/handshake.json"));
    bad["stealth_hs2_aes_gcm"]["responder"]
        .as_object_mut()
        .unwrap()
        .remove("principal");
    bad["public"]["initiator"]["hello"]["extra"] = 1.into();
    let mut errs = Vec::new();
    validate(&bad, &schema("handshake.schema.json"), "$", &mut errs);
    errs.sort();
    assert_eq!(
        errs,
        [
            "$.public.initiator.hello: unexpected key extra",
            "$.stealth_hs2_aes_gcm.responder: missing \"principal\""
        ],
    );
    let dangling = serde_json::json!({"$defs": {}, "items": {"$ref": "#/$defs/nowhere"}});
    assert!(resolve(&dangling).unwrap_err().contains("unresolved"));
}

#[test]
fn messages_t_and_types_are_what_the_cbor_says() {
    use snap2p::unstable::wire::cbor::{self, Value as C};
    for m in read(&format!("{DIR}/messages.json"))["messages"]
        .as_array()
        .unwrap()
    {
        let bytes = hex::decode(m["cbor_hex"].as_str().unwrap()).unwrap();
        let v = cbor::decode(&bytes).unwrap();
        let t = match v.get("t") {
            Some(C::Uint(t)) => *t,
            other => panic!("{other:?}"),
        };
        assert_eq!(m["t"], t, "{}", m["name"]);
        let keys: Vec<&str> = v.as_map().unwrap().iter().map(|(k, _)| *k).collect();
        let mut listed: Vec<&str> = m["types"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        listed.push("t");
        listed.sort();
        assert_eq!(keys, listed, "{}", m["name"]);
    }
}

#[test]
fn px1_wire_keys_are_the_encoded_keys() {
    use snap2p::unstable::wire::cbor::{self, Value as C};
    let v = read(&format!("{DIR}/px1.json"));
    for c in v["valid"].as_array().unwrap() {
        let frame = hex::decode(c["frame_hex"].as_str().unwrap()).unwrap();
        let (len, used) = match snap2p::unstable::wire::frame::read_varint(&frame).unwrap() {
            snap2p::unstable::wire::frame::Varint::Complete(l, u) => (l as usize, u),
            other => panic!("{other:?}"),
        };
        let decoded = cbor::decode(&frame[used..used + len]).unwrap();
        let wire = c["wire"].as_object().unwrap();
        let map = decoded.as_map().unwrap();
        assert_eq!(map.len(), wire.len(), "{}", c["name"]);
        for (k, x) in map {
            let want = &wire[*k];
            match x {
                C::Uint(n) => assert_eq!(want, n, "{}", c["name"]),
                C::Text(s) => assert_eq!(want, s, "{}", c["name"]),
                C::Array(a) => assert_eq!(want.as_array().unwrap().len(), a.len()),
                other => panic!("{other:?}"),
            }
        }
    }
}
