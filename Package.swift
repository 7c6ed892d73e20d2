// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "DispatchWebSocket",
    products: [
        .library(name: "DispatchWebSocket", targets: ["DispatchWebSocket"]),
        .executable(name: "ChatServer", targets: ["ChatServer"]),
        .executable(name: "EchoServer", targets: ["EchoServer"]),
        .executable(name: "EchoClient", targets: ["EchoClient"]),
        .executable(name: "AutobahnClient", targets: ["AutobahnClient"]),
    ],
    targets: [
        // System C libraries, no Swift package dependencies: OpenSSL for wss://, zlib for
        // permessage-deflate. On Debian/Ubuntu: apt-get install libssl-dev zlib1g-dev.
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .target(name: "DispatchWebSocket", dependencies: ["COpenSSL", "CZlib"]),
        // The chat example's Redis client (RESP2/RESP3 on the library's own transport).
        .target(
            name: "ChatRedis",
            dependencies: ["DispatchWebSocket"],
            path: "Examples/ChatServer/Redis"
        ),
        .target(
            name: "ChatRoom",
            dependencies: ["ChatRedis", "DispatchWebSocket"],
            path: "Examples/ChatServer/ChatRoom"
        ),
        .executableTarget(
            name: "ChatServer",
            dependencies: ["ChatRoom", "ChatRedis", "DispatchWebSocket"],
            path: "Examples/ChatServer/App"
        ),
        .executableTarget(
            name: "EchoServer",
            dependencies: ["DispatchWebSocket"],
            path: "Examples/EchoServer"
        ),
        .executableTarget(
            name: "EchoClient",
            dependencies: ["DispatchWebSocket"],
            path: "Examples/EchoClient"
        ),
        .executableTarget(
            name: "AutobahnClient",
            dependencies: ["DispatchWebSocket"],
            path: "Examples/AutobahnClient"
        ),
        // Loopback sockets for the tests' own peers (clients, fake servers, free ports), shared
        // by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "DispatchWebSocketTests", dependencies: ["DispatchWebSocket", "COpenSSL", "TestSupport"]),
        .testTarget(
            name: "ChatServerTests", dependencies: ["ChatRoom", "ChatRedis", "DispatchWebSocket", "TestSupport"]),
        // Runs the example executables (found beside the test bundle) against their contracts;
        // depending on them makes `swift test` build them first.
        .testTarget(
            name: "ExamplesTests",
            dependencies: ["EchoServer", "EchoClient", "AutobahnClient", "ChatServer", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
