import Foundation
import XCTest

/// A JSON value that keeps booleans, integers and strings apart on every platform.
indirect enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    var string: String? {
        if case let .string(s) = self { return s }
        return nil
    }
}

/// Every shared vector file (core/tests/vectors/NAME.json) against its schema
/// (core/tests/vectors/schema/NAME.schema.json): the JSON Schema subset those schemas use,
/// as every language's suite checks it.
final class VectorSchemaTests: XCTestCase {
    private var dir: URL {
        let identity = ProcessInfo.processInfo.environment["SNAP2P_VECTORS"] ?? "../core/tests/vectors/identity.json"
        return URL(fileURLWithPath: identity).deletingLastPathComponent()
    }

    private func read(_ url: URL) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url))
    }

    private func typeOk(_ v: JSONValue, _ t: String) -> Bool {
        switch (t, v) {
        case ("object", .object), ("array", .array), ("string", .string), ("integer", .int),
             ("boolean", .bool), ("null", .null):
            return true
        default:
            return false
        }
    }

    struct UnresolvedRef: Error { let ref: String }

    /// The schema with every `{"$ref": "#/$defs/NAME"}` replaced by that definition of its
    /// `$defs` (dropped); a reference to anything else is an error.
    private func resolve(_ s: JSONValue, _ defs: [String: JSONValue]? = nil, _ depth: Int = 0) throws -> JSONValue {
        var d = defs ?? [:]
        if defs == nil, case let .object(o)? = s["$defs"] { d = o }
        if depth > 64 { throw UnresolvedRef(ref: "nested too deep (a cycle?)") }
        switch s {
        case let .object(o):
            if let ref = o["$ref"]?.string {
                guard ref.hasPrefix("#/$defs/"), let def = d[String(ref.dropFirst("#/$defs/".count))] else {
                    throw UnresolvedRef(ref: ref)
                }
                return try resolve(def, d, depth + 1)
            }
            var out: [String: JSONValue] = [:]
            for (k, x) in o where k != "$defs" { out[k] = try resolve(x, d, depth + 1) }
            return .object(out)
        case let .array(a):
            return .array(try a.map { try resolve($0, d, depth + 1) })
        default:
            return s
        }
    }

    private func validate(_ v: JSONValue, _ s: JSONValue, _ at: String, _ errs: inout [String]) {
        if let t = s["type"] {
            let types: [String]
            switch t {
            case let .array(a): types = a.compactMap { $0.string }
            case let .string(x): types = [x]
            default: types = []
            }
            if !types.contains(where: { typeOk(v, $0) }) { errs.append("\(at): not \(types)"); return }
        }
        if case let .array(e)? = s["enum"], !e.contains(v) { errs.append("\(at): not in enum") }
        if let p = s["pattern"]?.string, case let .string(x) = v {
            let re = try! NSRegularExpression(pattern: p)
            if re.firstMatch(in: x, range: NSRange(x.startIndex..., in: x)) == nil {
                errs.append("\(at): \(x.prefix(60)) !~ \(p)")
            }
        }
        if case let .int(n) = v {
            if case let .int(m)? = s["minimum"], n < m { errs.append("\(at): below minimum") }
            if case let .int(m)? = s["maximum"], n > m { errs.append("\(at): above maximum") }
        }
        if case let .object(o) = v {
            var props: [String: JSONValue] = [:]
            if case let .object(p)? = s["properties"] { props = p }
            if case let .array(req)? = s["required"] {
                for k in req.compactMap({ $0.string }) where o[k] == nil { errs.append("\(at): missing \(k)") }
            }
            for (k, x) in o {
                if let ps = props[k] {
                    validate(x, ps, "\(at).\(k)", &errs)
                } else if case .bool(false)? = s["additionalProperties"] {
                    errs.append("\(at): unexpected key \(k)")
                } else if case .object? = s["additionalProperties"], let ap = s["additionalProperties"] {
                    validate(x, ap, "\(at).\(k)", &errs)
                }
            }
        }
        if case let .array(a) = v {
            if case let .int(m)? = s["minItems"], a.count < m { errs.append("\(at): too few items") }
            if let items = s["items"] {
                for (i, x) in a.enumerated() { validate(x, items, "\(at)[\(i)]", &errs) }
            }
        }
    }

    func testEveryVectorFileMatchesItsSchema() throws {
        let fm = FileManager.default
        let files = try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
        let schemas = try fm.contentsOfDirectory(atPath: dir.appendingPathComponent("schema").path)
            .map { $0.replacingOccurrences(of: ".schema.json", with: ".json") }.sorted()
        XCTAssertEqual(files, schemas)
        for f in files {
            let schema = try resolve(read(dir.appendingPathComponent("schema/" + f.replacingOccurrences(of: ".json", with: ".schema.json"))))
            var errs: [String] = []
            validate(try read(dir.appendingPathComponent(f)), schema, "$", &errs)
            XCTAssertEqual(Array(errs.prefix(10)), [], f)
        }
        // The validator notices a broken file.
        let bad = JSONValue.object([
            "description": .string("x"), "format_version": .int(2), "extra": .int(1),
            "messages": .array([.object([
                "name": .string("HELLO"), "fields": .object([:]), "types": .object(["att": .string("blob")]),
                "cbor_hex": .string("A3"), "frame_hex": .string("00"),
            ])]),
            "decode": .array([.object([
                "name": .string("d"), "cbor_hex": .string(""), "layer": .string("cbor"),
                "error": .null, "note": .string(""),
            ])]),
        ])
        var errs: [String] = []
        validate(bad, try read(dir.appendingPathComponent("schema/messages.schema.json")), "$", &errs)
        XCTAssertEqual(errs.count, 4, "\(errs)")
    }

    func testTheValidatorFollowsDefsReferences() throws {
        let json = { (s: String) in try JSONDecoder().decode(JSONValue.self, from: Data(s.utf8)) }
        let schema = try resolve(json(#"""
            {"$defs": {"party": {"type": "object", "properties": {"principal": {"type": "string"}},
                                 "required": ["principal"], "additionalProperties": false}},
             "type": "object", "properties": {"a": {"$ref": "#/$defs/party"}, "b": {"$ref": "#/$defs/party"}}}
            """#))
        var errs: [String] = []
        validate(try json(#"{"a": {"principal": "x"}, "b": {"extra": 1}}"#), schema, "$", &errs)
        XCTAssertEqual(errs.sorted(), ["$.b: missing principal", "$.b: unexpected key extra"])
        XCTAssertThrowsError(try resolve(json(##"{"items": {"$ref": "#/$defs/nowhere"}}"##)))
    }

    func testMessageFramesAreVarintLengthThenCbor() throws {
        guard case let .array(msgs)? = try read(dir.appendingPathComponent("messages.json"))["messages"] else {
            return XCTFail("messages.json")
        }
        for m in msgs {
            let cbor = m["cbor_hex"]!.string!
            var n = cbor.count / 2
            var prefix = ""
            repeat {
                var b = n & 0x7f
                n >>= 7
                if n != 0 { b |= 0x80 }
                let h = String(b, radix: 16)
                prefix += h.count == 1 ? "0" + h : h
            } while n != 0
            XCTAssertEqual(prefix + cbor, m["frame_hex"]!.string!, m["name"]!.string!)
            if case let .object(types)? = m["types"], case let .object(fields)? = m["fields"] {
                XCTAssertEqual(Set(types.keys), Set(fields.keys))
            } else {
                XCTFail("types/fields")
            }
        }
    }
}
