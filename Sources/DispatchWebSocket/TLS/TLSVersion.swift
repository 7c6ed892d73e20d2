/// A TLS protocol version. Only TLS 1.2 and 1.3 are offered: older versions are broken.
public enum TLSVersion: Sendable, Hashable, Comparable {
    /// TLS 1.2 (RFC 5246).
    case v1_2
    /// TLS 1.3 (RFC 8446).
    case v1_3

    var openSSLValue: Int32 {
        switch self {
        case .v1_2: return 0x0303  // TLS1_2_VERSION
        case .v1_3: return 0x0304  // TLS1_3_VERSION
        }
    }
}
