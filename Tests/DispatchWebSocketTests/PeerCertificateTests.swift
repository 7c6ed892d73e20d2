import COpenSSL
import Foundation
import XCTest

@testable import DispatchWebSocket

final class PeerCertificateTests: XCTestCase {
    // MARK: Helpers

    /// Parses PEM bytes held in memory into an `X509*` the caller frees.
    private func loadX509(_ pem: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> OpaquePointer? {
        let x509 = pem.withUnsafeBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        if x509 == nil { XCTFail("PEM did not parse", file: file, line: line) }
        return x509
    }

    private func certificate(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws
        -> WebSocketPeerCertificate
    {
        let pki = try TestPKI.require()
        let x509 = try XCTUnwrap(loadX509(pki.pem(name), file: file, line: line), file: file, line: line)
        defer { X509_free(x509) }
        return try XCTUnwrap(WebSocketPeerCertificate(x509: x509), "\(name) did not read", file: file, line: line)
    }

    /// What `openssl x509 -serial` prints, without `serial=`.
    private func opensslSerial(_ name: String) throws -> String {
        let pki = try TestPKI.require()
        let output = String(decoding: try pki.openssl(["x509", "-in", name, "-noout", "-serial"]), as: UTF8.self)
        let line = output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(line.hasPrefix("serial="), line)
        return String(line.dropFirst("serial=".count))
    }

    private static let allCertificates = [
        "ca.pem", "server.pem", "wronghost.pem", "expired.pem", "other-ca.pem", "untrusted.pem", "client.pem",
    ]
    private static let organization = "O=DispatchWebSocket Test"
    private static let caSubject = "CN=DispatchWebSocket Test CA,O=DispatchWebSocket Test"

    // MARK: WebSocketPeerCertificate

    func testServerCertificate() throws {
        let server = try certificate("server.pem")
        XCTAssertEqual(server.subject, "CN=localhost,\(Self.organization)")
        XCTAssertEqual(server.issuer, Self.caSubject)
        XCTAssertEqual(server.commonName, "localhost")
        XCTAssertEqual(server.subjectAlternativeNames, [.ipAddress("127.0.0.1"), .ipAddress("::1"), .dns("localhost")])
        XCTAssertLessThan(server.notBefore, server.notAfter)
        let now = Int64(Date().timeIntervalSince1970)
        XCTAssertLessThanOrEqual(server.notBefore, now + 60)
        XCTAssertGreaterThan(server.notAfter, now)
    }

    func testCACertificateIsSelfIssuedWithoutAlternativeNames() throws {
        let ca = try certificate("ca.pem")
        XCTAssertEqual(ca.subject, Self.caSubject)
        XCTAssertEqual(ca.issuer, ca.subject)
        XCTAssertEqual(ca.commonName, "DispatchWebSocket Test CA")
        XCTAssertEqual(ca.subjectAlternativeNames, [])
    }

    func testWrongHostUntrustedAndClientCertificates() throws {
        let wrongHost = try certificate("wronghost.pem")
        XCTAssertEqual(wrongHost.subjectAlternativeNames, [.dns("wrong.example")])
        XCTAssertEqual(wrongHost.commonName, "wrong.example")
        XCTAssertEqual(wrongHost.issuer, Self.caSubject)

        let untrusted = try certificate("untrusted.pem")
        XCTAssertEqual(untrusted.issuer, "CN=DispatchWebSocket Other CA,\(Self.organization)")
        XCTAssertEqual(untrusted.subject, "CN=localhost,\(Self.organization)")

        let client = try certificate("client.pem")
        XCTAssertEqual(client.subject, "CN=test-client,\(Self.organization)")
        XCTAssertEqual(client.commonName, "test-client")
        XCTAssertEqual(client.subjectAlternativeNames, [])
        XCTAssertEqual(client.serialNumber, TestPKI.clientSerial)
    }

    func testExpiredCertificateValidityIsExactlyJanuary2020() throws {
        let expired = try certificate("expired.pem")
        XCTAssertEqual(expired.notBefore, 1_577_836_800)  // 2020-01-01T00:00:00Z
        XCTAssertEqual(expired.notAfter, 1_580_515_200)  // 2020-02-01T00:00:00Z
        XCTAssertLessThan(expired.notAfter, Int64(Date().timeIntervalSince1970))
        XCTAssertEqual(expired.subject, "CN=localhost,\(Self.organization)")
        XCTAssertEqual(expired.issuer, Self.caSubject)
        XCTAssertEqual(
            expired.subjectAlternativeNames, [.ipAddress("127.0.0.1"), .ipAddress("::1"), .dns("localhost")])
    }

    func testSerialNumbersMatchOpenSSL() throws {
        for name in Self.allCertificates {
            let serial = try certificate(name).serialNumber
            XCTAssertEqual(serial, try opensslSerial(name), name)
            XCTAssertFalse(serial.isEmpty, name)
            XCTAssertEqual(serial, serial.uppercased(), name)
            XCTAssertEqual(serial.count % 2, 0, name)
            XCTAssertFalse(serial.hasPrefix("00"), name)
        }
    }

    func testDERMatchesOpenSSL() throws {
        let pki = try TestPKI.require()
        for name in Self.allCertificates {
            let der = try pki.openssl(["x509", "-in", name, "-outform", "DER"])
            XCTAssertFalse(der.isEmpty, name)
            XCTAssertEqual(try certificate(name).der, der, name)
        }
    }

    func testEveryCertificateHasOrderedValidityAndEqualReadsAreEqual() throws {
        for name in Self.allCertificates {
            let first = try certificate(name)
            XCTAssertLessThan(first.notBefore, first.notAfter, name)
            XCTAssertEqual(first, try certificate(name), name)
            XCTAssertEqual(first.hashValue, try certificate(name).hashValue, name)
        }
        XCTAssertNotEqual(try certificate("server.pem"), try certificate("untrusted.pem"))
    }

    func testServerChainStartsWithTheLeaf() throws {
        let pki = try TestPKI.require()
        let chainLeaf = try XCTUnwrap(loadX509(pki.pem("server-chain.pem")))
        defer { X509_free(chainLeaf) }
        XCTAssertEqual(WebSocketPeerCertificate(x509: chainLeaf), try certificate("server.pem"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: pki.serverEncryptedKeyPath))
        XCTAssertTrue(
            String(decoding: pki.pem("server-encrypted.key"), as: UTF8.self)
                .contains("BEGIN ENCRYPTED PRIVATE KEY"))
    }

    func testReadingLeavesNoErrorQueued() throws {
        ERR_clear_error()
        _ = try certificate("client.pem")  // no SAN extension
        _ = try certificate("server.pem")
        XCTAssertEqual(ERR_peek_error(), 0)
    }

    // MARK: TLSErrorMapping.verificationFailure

    func testVerificationFailureCodes() {
        let table: [(Int32, WebSocketError.Code)] = [
            (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, .certificateUntrusted),
            (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, .certificateUntrusted),
            (X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, .certificateUntrusted),
            (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, .certificateUntrusted),
            (X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, .certificateUntrusted),
            (X509_V_ERR_CERT_UNTRUSTED, .certificateUntrusted),
            (X509_V_ERR_CERT_HAS_EXPIRED, .certificateExpired),
            (X509_V_ERR_CERT_NOT_YET_VALID, .certificateNotYetValid),
            (X509_V_ERR_HOSTNAME_MISMATCH, .certificateHostnameMismatch),
            (X509_V_ERR_IP_ADDRESS_MISMATCH, .certificateHostnameMismatch),
            (X509_V_ERR_CERT_REVOKED, .certificateInvalid),
            (X509_V_ERR_CERT_SIGNATURE_FAILURE, .certificateInvalid),
            (X509_V_ERR_INVALID_PURPOSE, .certificateInvalid),
            (X509_V_ERR_CERT_REJECTED, .certificateInvalid),
            (9999, .certificateInvalid),
        ]
        for (result, code) in table {
            let error = TLSErrorMapping.verificationFailure(Int(result), expectedHost: "example.test")
            XCTAssertEqual(error.code, code, "X509 verify error \(result)")
            let reason = String(cString: X509_verify_cert_error_string(Int(result)))
            XCTAssertTrue(error.message.contains(reason), "\(error.message) lacks \(reason)")
        }
        XCTAssertTrue(
            TLSErrorMapping.verificationFailure(Int(X509_V_ERR_CERT_HAS_EXPIRED), expectedHost: nil).message
                .contains("certificate has expired"))
    }

    func testHostnameMismatchNamesTheExpectedHost() {
        let name = TLSErrorMapping.verificationFailure(Int(X509_V_ERR_HOSTNAME_MISMATCH), expectedHost: "example.test")
        XCTAssertTrue(name.message.contains("\"example.test\""), name.message)
        let ip = TLSErrorMapping.verificationFailure(Int(X509_V_ERR_IP_ADDRESS_MISMATCH), expectedHost: "127.0.0.2")
        XCTAssertEqual(ip.code, .certificateHostnameMismatch)
        XCTAssertTrue(ip.message.contains("\"127.0.0.2\""), ip.message)
        let unnamed = TLSErrorMapping.verificationFailure(Int(X509_V_ERR_HOSTNAME_MISMATCH), expectedHost: nil)
        XCTAssertEqual(unnamed.code, .certificateHostnameMismatch)
    }

    // MARK: TLSErrorMapping.drainErrorQueue

    func testDrainErrorQueueEmptiesTheQueue() {
        ERR_clear_error()
        let garbage = Array("this is not a PEM certificate".utf8)
        let x509 = garbage.withUnsafeBytes { raw -> OpaquePointer? in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        XCTAssertNil(x509)
        dws_ERR_raise(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER)
        dws_ERR_raise(ERR_LIB_SSL, SSL_R_HTTP_REQUEST)
        XCTAssertNotEqual(ERR_peek_error(), 0)
        let error = TLSErrorMapping.drainErrorQueue(context: "TLS handshake")
        XCTAssertEqual(ERR_peek_error(), 0)
        XCTAssertEqual(error.code, .tlsHandshakeFailed)
        XCTAssertTrue(error.message.hasPrefix("TLS handshake: error:"), error.message)
        XCTAssertTrue(error.message.contains("wrong version number"), error.message)
    }

    func testDrainFirstReasonReturnsTheOldestAndEmptiesTheQueue() {
        ERR_clear_error()
        XCTAssertNil(TLSErrorMapping.drainFirstReason())
        dws_ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED)
        dws_ERR_raise(ERR_LIB_SSL, SSL_R_HTTP_REQUEST)
        let first = TLSErrorMapping.drainFirstReason()
        XCTAssertEqual(first?.lib, ERR_LIB_SSL)
        XCTAssertEqual(first?.reason, SSL_R_CERTIFICATE_VERIFY_FAILED)
        XCTAssertEqual(ERR_peek_error(), 0)
    }

    func testErrorQueueMapping() {
        let table: [(Int32, WebSocketError.Code, String)] = [
            (SSL_R_TLSV1_ALERT_UNKNOWN_CA, .tlsAlertReceived, "unknown CA"),
            (SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, .tlsAlertReceived, "bad certificate"),
            (SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, .tlsAlertReceived, "handshake failure"),
            (SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, .tlsAlertReceived, "protocol version"),
            (SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, .certificateRequired, "certificate required"),
            (SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, .certificateRequired, "peer did not return a certificate"),
            (SSL_R_CERTIFICATE_VERIFY_FAILED, .certificateInvalid, "certificate verify failed"),
            (SSL_R_HTTP_REQUEST, .tlsHandshakeFailed, "http request"),
            (SSL_R_WRONG_VERSION_NUMBER, .tlsHandshakeFailed, "wrong version number"),
            (SSL_R_UNSUPPORTED_PROTOCOL, .tlsHandshakeFailed, "unsupported protocol"),
            (SSL_R_NO_SHARED_CIPHER, .tlsHandshakeFailed, "no shared cipher"),
        ]
        for (reason, code, text) in table {
            ERR_clear_error()
            dws_ERR_raise(ERR_LIB_SSL, reason)
            let error = TLSErrorMapping.drainErrorQueue(context: "handshake")
            XCTAssertEqual(error.code, code, "reason \(reason): \(error.message)")
            XCTAssertTrue(error.message.hasPrefix("handshake: "), error.message)
            XCTAssertTrue(error.message.contains(text), "\(error.message) lacks \(text)")
            XCTAssertEqual(ERR_peek_error(), 0)
        }
    }

    func testErrorQueueMappingPrefersTheSSLReasonAndHandlesEmpty() {
        let decoder = dws_ERR_PACK(ERR_LIB_PEM, PEM_R_NO_START_LINE)
        let alert = dws_ERR_PACK(ERR_LIB_SSL, SSL_R_TLSV1_ALERT_UNKNOWN_CA)
        XCTAssertEqual(TLSErrorMapping.error(forCodes: [decoder, alert], context: "x").code, .tlsAlertReceived)
        XCTAssertEqual(TLSErrorMapping.error(forCodes: [decoder], context: "x").code, .tlsHandshakeFailed)
        let empty = TLSErrorMapping.error(forCodes: [], context: "x")
        XCTAssertEqual(empty.code, .tlsHandshakeFailed)
        XCTAssertTrue(empty.message.hasPrefix("x: "))
        XCTAssertEqual(TLSErrorMapping.alertNumber(reason: SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED), 116)
        XCTAssertNil(TLSErrorMapping.alertNumber(reason: SSL_R_HTTP_REQUEST))
        XCTAssertEqual(TLSErrorMapping.alertName(116), "certificate required")
    }
}
