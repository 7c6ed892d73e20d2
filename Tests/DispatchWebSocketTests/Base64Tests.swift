import XCTest

@testable import DispatchWebSocket

final class Base64CodingTests: XCTestCase {
    /// RFC 4648 §10.
    private let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ]

    func testEncodesTheRFC4648Vectors() {
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded, plain)
        }
    }

    func testDecodesTheRFC4648Vectors() {
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64.decode(encoded), Array(plain.utf8), encoded)
        }
    }

    func testUsesTheStandardAlphabetForHighBits() {
        XCTAssertEqual(Base64.encode([0xFB, 0xFF, 0xBF]), "+/+/")
        XCTAssertEqual(Base64.decode("+/+/"), [0xFB, 0xFF, 0xBF])
    }

    func testEveryLengthAndByteValueRoundTrips() {
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for length in 0...bytes.count {
            let prefix = Array(bytes[0..<length])
            let encoded = Base64.encode(prefix)
            XCTAssertEqual(encoded.utf8.count, (length + 2) / 3 * 4)
            XCTAssertEqual(Base64.decode(encoded), prefix, "length \(length)")
        }
    }

    func testDecodeRejectsALengthThatIsNotAMultipleOfFour() {
        for invalid in ["Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=", "Zm9vYmFy="] {
            XCTAssertNil(Base64.decode(invalid), invalid)
        }
    }

    func testDecodeRejectsCharactersOutsideTheAlphabet() {
        for invalid in ["Zm9v YmFy", "Zm9v\nYmFy", "Zm9-", "Zm9_", "Zm9\u{00E9}", "Zm9v\u{0000}AAA", "Zm.v"] {
            XCTAssertNil(Base64.decode(invalid), invalid.debugDescription)
        }
    }

    func testDecodeRejectsMisplacedPadding() {
        for invalid in ["Zg=a", "Z===", "====", "Zg==Zm9v", "Zm=v", "=m9v", "Zg==="] {
            XCTAssertNil(Base64.decode(invalid), invalid)
        }
    }

    /// Non-canonical encodings (unused bits set before the padding) are refused, so every
    /// byte string has exactly one accepted spelling.
    func testDecodeRejectsNonZeroTrailingBits() {
        XCTAssertNil(Base64.decode("Zh=="))
        XCTAssertNil(Base64.decode("Zm9="))
        XCTAssertEqual(Base64.decode("Zg=="), [UInt8(ascii: "f")])
        XCTAssertEqual(Base64.decode("Zm8="), Array("fo".utf8))
    }

    func testDecodeAcceptsASubstring() {
        let header = "key: Zm9vYmFy "
        let value = header.dropFirst(5).dropLast()
        XCTAssertEqual(Base64.decode(value), Array("foobar".utf8))
    }
}
