// swift-tools-version:5.9
// snap2p for Swift: the uniffi-generated `Snap2P` module over the `snap2pFFI` C module.
//
// Linux (what CI runs): `snap2pFFI` is a system-library module (header + modulemap) linking
// libsnap2p_uniffi.so; build with `-Xlinker -L<dir of the .so>` (see ci/steps/60-swift.sh).
// Apple platforms: a binary target, either the XCFramework swift/build-xcframework.sh made
// here (on macOS) or the release's zip at releaseURL with its checksum (below).
import Foundation
import PackageDescription

// The release (ci/version.sh keeps it equal to the workspace version). The release workflow
// (.github/workflows/release.yml) uploads snap2pFFI.xcframework.zip to this URL and
// swift/update-checksum.sh writes its SHA-256 below; until a release sets it, Apple
// platforms build the XCFramework locally (build-xcframework.sh) or use the system library.
let version = "0.1.0"
let releaseURL = "https://example.invalid/snap2p/releases/download/v\(version)/snap2pFFI.xcframework.zip"
let releaseChecksum = ""

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let xcframework = FileManager.default.fileExists(atPath: here + "/snap2pFFI.xcframework")

var ffi: Target
#if os(Linux)
ffi = .systemLibrary(name: "snap2pFFI", path: "Sources/snap2pFFI")
#else
if xcframework {
    ffi = .binaryTarget(name: "snap2pFFI", path: "snap2pFFI.xcframework")
} else if !releaseChecksum.isEmpty {
    ffi = .binaryTarget(name: "snap2pFFI", url: releaseURL, checksum: releaseChecksum)
} else {
    ffi = .systemLibrary(name: "snap2pFFI", path: "Sources/snap2pFFI")
}
#endif

let package = Package(
    name: "Snap2P",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Snap2P", targets: ["Snap2P"]),
        .executable(name: "snap2p-interop-runner", targets: ["InteropRunner"]),
    ],
    targets: [
        ffi,
        // Sources/Snap2P/Snap2P.swift is generated (uniffi-bindgen), never committed.
        .target(name: "Snap2P", dependencies: ["snap2pFFI"], path: "Sources/Snap2P"),
        // The interop matrix runner (docs/INTEROP.md, ci/interop/runner-swift.sh).
        // SHA-256 for checking transfers independently of the library (no CryptoKit on Linux).
        .target(name: "SHA256Support", path: "Sources/SHA256Support"),
        .executableTarget(name: "InteropRunner", dependencies: ["Snap2P", "SHA256Support"], path: "Sources/InteropRunner"),
        .testTarget(name: "Snap2PTests", dependencies: ["Snap2P", "SHA256Support"], path: "Tests/Snap2PTests"),
    ]
)
