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
        .target(name: "DispatchWebSocket"),
        .target(
            name: "ChatRoom",
            dependencies: ["DispatchWebSocket"],
            path: "Examples/ChatServer/ChatRoom"
        ),
        .executableTarget(
            name: "ChatServer",
            dependencies: ["ChatRoom", "DispatchWebSocket"],
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
        .testTarget(name: "DispatchWebSocketTests", dependencies: ["DispatchWebSocket"]),
        .testTarget(name: "ChatServerTests", dependencies: ["ChatRoom", "DispatchWebSocket"]),
    ],
    swiftLanguageModes: [.v6]
)
