import Foundation
import XCTest

/// A throwaway PKI for the TLS tests, made with the `openssl` command-line tool in a fresh
/// temporary directory the first time it is asked for (once per test process; thread-safe) and
/// removed when the process exits. Nothing of it is committed.
///
/// All keys are EC P-256. Certificates:
/// - `ca.pem` — the test CA (`CN=DispatchWebSocket Test CA`).
/// - `server.pem` / `server.key` — `CN=localhost`, SANs `IP:127.0.0.1, IP:::1, DNS:localhost`,
///   EKU serverAuth, signed by the CA; `server-chain.pem` is the leaf followed by the CA;
///   `server-encrypted.key` is the same key as PKCS#8 with AES-256, password
///   ``keyPassword``.
/// - `wronghost.pem` / `.key` — only `DNS:wrong.example`, signed by the CA.
/// - `expired.pem` / `.key` — like the server's, valid only in January 2020.
/// - `other-ca.pem` and `untrusted.pem` / `.key` — a second CA and a server certificate (same
///   SANs as the server's) it signed; not trusted by `ca.pem`.
/// - `client.pem` / `.key` — `CN=test-client`, EKU clientAuth, signed by the CA.
///
/// ```swift
/// let pki = try TestPKI.require()   // throws XCTSkip without openssl
/// let pem = pki.pem("server.pem")
/// ```
final class TestPKI: Sendable {
    /// The key password of ``serverEncryptedKeyPath``.
    static let keyPassword = "test-password"
    /// The serial number given to the client certificate (others get random ones).
    static let clientSerial = "0FEDCBA987654321"

    /// The directory holding every file.
    let directory: String
    /// The `openssl` executable used.
    let opensslPath: String

    /// `ca.pem`.
    var caPath: String { path("ca.pem") }
    /// `server.pem`.
    var serverCertPath: String { path("server.pem") }
    /// `server.key`.
    var serverKeyPath: String { path("server.key") }
    /// `server-chain.pem` (leaf + CA).
    var serverChainPath: String { path("server-chain.pem") }
    /// `server-encrypted.key` (password ``keyPassword``).
    var serverEncryptedKeyPath: String { path("server-encrypted.key") }
    /// `wronghost.pem`.
    var wrongHostCertPath: String { path("wronghost.pem") }
    /// `wronghost.key`.
    var wrongHostKeyPath: String { path("wronghost.key") }
    /// `expired.pem`.
    var expiredCertPath: String { path("expired.pem") }
    /// `expired.key`.
    var expiredKeyPath: String { path("expired.key") }
    /// `other-ca.pem`.
    var otherCAPath: String { path("other-ca.pem") }
    /// `untrusted.pem`.
    var untrustedCertPath: String { path("untrusted.pem") }
    /// `untrusted.key`.
    var untrustedKeyPath: String { path("untrusted.key") }
    /// `client.pem`.
    var clientCertPath: String { path("client.pem") }
    /// `client.key`.
    var clientKeyPath: String { path("client.key") }

    /// The full path of one of the files, e.g. `path("server.pem")`.
    func path(_ name: String) -> String { directory + "/" + name }

    /// The bytes of one of the files, e.g. `pem("server.pem")` (empty if it does not exist).
    func pem(_ name: String) -> [UInt8] {
        FileManager.default.contents(atPath: path(name)).map { [UInt8]($0) } ?? []
    }

    // MARK: The shared instance

    private static let shared: Result<TestPKI, PKIError> = {
        let result = Result { () throws(PKIError) -> TestPKI in try TestPKI() }
        if case .success = result { atexit { TestPKI.removeDirectory() } }
        return result
    }()

    private static func removeDirectory() {
        if case .success(let pki) = shared { try? FileManager.default.removeItem(atPath: pki.directory) }
    }

    /// Whether the PKI could be made (false when `openssl` is missing or failed).
    static var isAvailable: Bool {
        if case .success = shared { return true }
        return false
    }

    /// Why the PKI is not available, or nil if it is.
    static var unavailableReason: String? {
        if case .failure(let error) = shared { return error.description }
        return nil
    }

    /// The shared PKI; throws `XCTSkip` (with the reason) when it cannot be made.
    static func require() throws -> TestPKI {
        switch shared {
        case .success(let pki): return pki
        case .failure(let error): throw XCTSkip("TestPKI unavailable: \(error)")
        }
    }

    /// Runs `openssl` with `arguments` in the PKI directory and returns its standard output.
    func openssl(_ arguments: [String]) throws -> [UInt8] {
        try Self.run(opensslPath, arguments, in: directory)
    }

    // MARK: Making it

    /// Why the PKI could not be made.
    struct PKIError: Error, CustomStringConvertible {
        /// The explanation.
        let description: String
    }

    private init() throws(PKIError) {
        guard let openssl = Self.findOpenSSL() else {
            throw PKIError(description: "no `openssl` executable on PATH; TLS tests are skipped (install openssl)")
        }
        opensslPath = openssl
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("DispatchWebSocket-TestPKI-\(getpid())-\(UUID().uuidString)").path
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw PKIError(description: "cannot create \(dir): \(error)")
        }
        directory = dir
        do {
            try make()
        } catch let error as PKIError {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw PKIError(description: "\(error)")
        }
    }

    private func write(_ name: String, _ text: String) throws {
        guard FileManager.default.createFile(atPath: path(name), contents: Data(text.utf8)) else {
            throw PKIError(description: "cannot write \(path(name))")
        }
    }

    private func key(_ name: String) throws {
        _ = try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name])
    }

    private func selfSignedCA(_ base: String, commonName: String) throws {
        try key("\(base).key")
        _ = try openssl([
            "req", "-x509", "-new", "-key", "\(base).key", "-sha256", "-days", "3650",
            "-subj", "/O=DispatchWebSocket Test/CN=\(commonName)",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", "\(base).pem",
        ])
    }

    /// A key, a CSR and a certificate `base.pem` signed by `ca` with `extensions` (extfile lines).
    private func leaf(
        _ base: String, subject: String, ca: String, extensions: [String], serial: String? = nil
    ) throws {
        try key("\(base).key")
        _ = try openssl(["req", "-new", "-key", "\(base).key", "-subj", subject, "-out", "\(base).csr"])
        try write("\(base).ext", extensions.joined(separator: "\n") + "\n")
        var arguments = [
            "x509", "-req", "-in", "\(base).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-sha256",
            "-days", "825", "-extfile", "\(base).ext", "-out", "\(base).pem",
        ]
        if let serial {
            arguments += ["-set_serial", "0x" + serial]
        } else {
            arguments += ["-CAserial", "\(ca).srl", "-CAcreateserial"]
        }
        _ = try openssl(arguments)
    }

    private static let serverExtensions = [
        "basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
    ]

    private func make() throws {
        let organization = "/O=DispatchWebSocket Test"
        try selfSignedCA("ca", commonName: "DispatchWebSocket Test CA")
        try leaf("server", subject: "\(organization)/CN=localhost", ca: "ca", extensions: Self.serverExtensions)
        try write(
            "server-chain.pem",
            String(decoding: pem("server.pem"), as: UTF8.self) + String(decoding: pem("ca.pem"), as: UTF8.self))
        _ = try openssl([
            "pkcs8", "-topk8", "-in", "server.key", "-v2", "aes-256-cbc",
            "-passout", "pass:\(Self.keyPassword)", "-out", "server-encrypted.key",
        ])
        try leaf(
            "wronghost", subject: "\(organization)/CN=wrong.example", ca: "ca",
            extensions: [
                "basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
                "extendedKeyUsage=serverAuth", "subjectAltName=DNS:wrong.example",
            ])
        try leaf(
            "client", subject: "\(organization)/CN=test-client", ca: "ca",
            extensions: [
                "basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth",
            ], serial: Self.clientSerial)
        try selfSignedCA("other-ca", commonName: "DispatchWebSocket Other CA")
        try leaf(
            "untrusted", subject: "\(organization)/CN=localhost", ca: "other-ca", extensions: Self.serverExtensions)
        try makeExpired()
    }

    /// `openssl x509 -req` (3.0) cannot back-date, so the expired certificate comes from
    /// `openssl ca` with explicit `-startdate`/`-enddate` and a minimal configuration.
    private func makeExpired() throws {
        try key("expired.key")
        _ = try openssl([
            "req", "-new", "-key", "expired.key", "-subj", "/O=DispatchWebSocket Test/CN=localhost",
            "-out", "expired.csr",
        ])
        try FileManager.default.createDirectory(atPath: path("ca-db"), withIntermediateDirectories: true)
        try write("ca-db/index.txt", "")
        try write("ca-db/serial", "1000\n")
        try write(
            "ca.cnf",
            """
            [ ca ]
            default_ca = test_ca

            [ test_ca ]
            database = \(path("ca-db/index.txt"))
            new_certs_dir = \(path("ca-db"))
            serial = \(path("ca-db/serial"))
            certificate = \(path("ca.pem"))
            private_key = \(path("ca.key"))
            default_md = sha256
            policy = policy_any
            unique_subject = no
            copy_extensions = none
            preserve = yes

            [ policy_any ]
            organizationName = optional
            commonName = supplied

            [ expired_ext ]
            \(Self.serverExtensions.joined(separator: "\n"))

            """)
        _ = try openssl([
            "ca", "-batch", "-config", "ca.cnf", "-in", "expired.csr", "-out", "expired.pem", "-notext",
            "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-extensions", "expired_ext",
        ])
    }

    // MARK: Processes

    private static func findOpenSSL() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin:/usr/local/bin"
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"]
        for dir in dirs {
            let candidate = dir + "/openssl"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func run(_ executable: String, _ arguments: [String], in directory: String) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw PKIError(description: "cannot run \(executable): \(error)")
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PKIError(
                description: "`openssl \(arguments.joined(separator: " "))` exited \(process.terminationStatus): "
                    + String(decoding: stderr, as: UTF8.self))
        }
        return [UInt8](stdout)
    }
}
