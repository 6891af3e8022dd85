//! `vectors/locators.json`: locator parsing, case folding, leading zeros and canonical
//! text (PROTOCOL.md §14), the same file every language's suite checks.

use snap2p::locator::Locator;

#[test]
fn locator_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/locators.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("locators.json");
    let valid = v["valid"].as_array().unwrap();
    let invalid = v["invalid"].as_array().unwrap();
    assert!(valid.len() >= 10 && invalid.len() >= 10);
    for c in valid {
        let (name, input) = (c["name"].as_str().unwrap(), c["input"].as_str().unwrap());
        let l: Locator = input
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {input} refused: {e}"));
        assert_eq!(l.to_string(), c["canonical"].as_str().unwrap(), "{name}");
        assert_eq!(
            l.scheme().as_str(),
            c["transport"].as_str().unwrap(),
            "{name}"
        );
        let again: Locator = l.to_string().parse().unwrap();
        assert_eq!(again, l, "{name}: the canonical text round-trips");
    }
    for c in invalid {
        let (name, input) = (c["name"].as_str().unwrap(), c["input"].as_str().unwrap());
        let e = input
            .parse::<Locator>()
            .expect_err(&format!("{name}: {input} accepted"));
        assert_eq!(e.code.name(), c["error"].as_str().unwrap(), "{name}");
    }
}
