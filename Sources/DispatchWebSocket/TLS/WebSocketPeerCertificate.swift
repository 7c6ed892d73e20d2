import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A certificate the peer presented in the TLS handshake (the leaf), as litert/websocket.js's
/// `peerCertificate`.
///
/// A value copy of what the certificate says, read once when the handshake completes; it holds no
/// OpenSSL object, so it can be kept and sent across threads freely.
///
/// ```swift
/// if let certificate = connection.peerCertificate {
///     print(certificate.commonName ?? certificate.subject, "valid until", certificate.notAfter)
/// }
/// ```
public struct WebSocketPeerCertificate: Sendable, Hashable {
    /// One entry of the certificate's subject alternative name extension.
    public enum AlternativeName: Sendable, Hashable {
        /// A DNS name, e.g. `localhost` or `*.example.com`.
        case dns(String)
        /// An IP address in numeric form: `127.0.0.1`, or IPv6 as `inet_ntop` writes it (`::1`).
        case ipAddress(String)
        /// An e-mail address (`rfc822Name`).
        case email(String)
        /// A URI, e.g. `spiffe://example.org/service`.
        case uri(String)
    }

    /// The subject's distinguished name in RFC 2253 one-line form, most specific component
    /// first, e.g. `CN=localhost,O=DispatchWebSocket Test`.
    public let subject: String
    /// The issuer's distinguished name, in the same form as ``subject``.
    public let issuer: String
    /// The serial number in uppercase hexadecimal, two digits a byte, no separators, without
    /// leading zero bytes (as `openssl x509 -serial` prints it), e.g. `1A2B3C`.
    public let serialNumber: String
    /// The start of the validity period, in seconds since 1970-01-01 00:00:00 UTC.
    public let notBefore: Int64
    /// The end of the validity period, in seconds since 1970-01-01 00:00:00 UTC.
    public let notAfter: Int64
    /// The subject alternative names, in the certificate's order (empty without the extension).
    public let subjectAlternativeNames: [AlternativeName]
    /// The whole certificate, DER-encoded.
    public let der: [UInt8]
    private let subjectCommonName: String?

    /// The subject's common name (CN), if it has one; the last one if it has several.
    public var commonName: String? { subjectCommonName }

    /// Reads `x509` (an `X509*`); does not take ownership. nil if it cannot be encoded.
    init?(x509: OpaquePointer) {
        guard let der = Self.derEncoding(x509),
            let subjectName = X509_get_subject_name(x509),
            let issuerName = X509_get_issuer_name(x509),
            let subject = Self.rfc2253(subjectName),
            let issuer = Self.rfc2253(issuerName),
            let serial = X509_get0_serialNumber(x509),
            let notBeforeTime = X509_get0_notBefore(x509),
            let notAfterTime = X509_get0_notAfter(x509),
            let notBefore = Self.epochSeconds(notBeforeTime),
            let notAfter = Self.epochSeconds(notAfterTime)
        else { return nil }
        self.der = der
        self.subject = subject
        self.issuer = issuer
        self.serialNumber = Self.hex(serial)
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.subjectAlternativeNames = Self.alternativeNames(x509)
        self.subjectCommonName = Self.commonName(subjectName)
    }

    // MARK: Reading the X509

    private static func derEncoding(_ x509: OpaquePointer) -> [UInt8]? {
        let length = i2d_X509(x509, nil)
        guard length > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        let written = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_X509(x509, &cursor)
        }
        return written == length ? bytes : nil
    }

    private static func rfc2253(_ name: OpaquePointer) -> String? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, dws_XN_FLAG_RFC2253()) >= 0 else { return nil }
        let pending = Int(BIO_ctrl_pending(bio))
        guard pending > 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = bytes.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(pending)) }
        guard read >= 0 else { return nil }
        return String(decoding: bytes.prefix(Int(read)), as: UTF8.self)
    }

    private static func commonName(_ name: OpaquePointer) -> String? {
        var index: Int32 = -1
        var last: Int32 = -1
        while true {
            index = X509_NAME_get_index_by_NID(name, NID_commonName, index)
            if index < 0 { break }
            last = index
        }
        guard last >= 0, let entry = X509_NAME_get_entry(name, last),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { dws_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    /// Byte-wise uppercase hex of an ASN1_INTEGER's magnitude, `-` first if negative.
    private static func hex(_ integer: UnsafePointer<ASN1_INTEGER>) -> String {
        var bytes = Self.bytes(of: integer)
        while bytes.count > 1, bytes[0] == 0 { bytes.removeFirst() }
        if bytes.isEmpty { bytes = [0] }
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2 + 1)
        if ASN1_STRING_type(integer) == V_ASN1_NEG_INTEGER { text.append(UInt8(ascii: "-")) }
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func bytes(of string: UnsafePointer<ASN1_STRING>) -> [UInt8] {
        let length = Int(ASN1_STRING_length(string))
        guard length > 0, let data = ASN1_STRING_get0_data(string) else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: length))
    }

    private static func epochSeconds(_ time: UnsafePointer<ASN1_TIME>) -> Int64? {
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        let days = daysSinceEpoch(
            year: Int64(parts.tm_year) + 1900, month: Int64(parts.tm_mon) + 1, day: Int64(parts.tm_mday))
        return days * 86_400 + Int64(parts.tm_hour) * 3_600 + Int64(parts.tm_min) * 60 + Int64(parts.tm_sec)
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func alternativeNames(_ x509: OpaquePointer) -> [AlternativeName] {
        // X509_get_ext_d2i also queues an error when the extension is present but malformed;
        // absent is not an error. Either way nothing of it must stay in the thread's queue.
        guard let names = dws_X509_get_subject_alt_names(x509) else {
            ERR_clear_error()
            return []
        }
        defer { dws_GENERAL_NAMES_free(names) }
        var result: [AlternativeName] = []
        for i in 0..<dws_sk_GENERAL_NAME_num(names) {
            guard let name = dws_sk_GENERAL_NAME_value(names, i) else { continue }
            switch name.pointee.type {
            case GEN_DNS:
                if let value = name.pointee.d.dNSName { result.append(.dns(text(value))) }
            case GEN_EMAIL:
                if let value = name.pointee.d.rfc822Name { result.append(.email(text(value))) }
            case GEN_URI:
                if let value = name.pointee.d.uniformResourceIdentifier { result.append(.uri(text(value))) }
            case GEN_IPADD:
                if let value = name.pointee.d.iPAddress, let address = ipAddress(bytes(of: value)) {
                    result.append(.ipAddress(address))
                }
            default:
                continue
            }
        }
        return result
    }

    private static func text(_ string: UnsafePointer<ASN1_STRING>) -> String {
        String(decoding: bytes(of: string), as: UTF8.self)
    }

    private static func ipAddress(_ bytes: [UInt8]) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
