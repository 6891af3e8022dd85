// swift-tools-version:5.9
// snap2p from Swift: an echo server and a client in one process, with the server's events.
// (In a directory of its own: SwiftPM names a package after its directory, and a package
// "swift" depending on the package "swift" (../../swift) was a cycle.)
//   swift run -Xlinker -L<dir of libsnap2p_uniffi.so>   (Linux; LD_LIBRARY_PATH set too)
import PackageDescription

let package = Package(
    name: "Snap2PEcho",
    platforms: [.macOS(.v12)],
    dependencies: [.package(path: "../../../swift")],
    targets: [
        .executableTarget(name: "Snap2PEcho", dependencies: [.product(name: "Snap2P", package: "swift")]),
    ]
)
