import Dispatch
import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The hand-shake between work queued on a loop and a poller lingering in its wait.
final class LoopWakerTests: XCTestCase {
    private func pipeHoldsByte(_ waker: LoopWaker) -> Bool {
        var byte: UInt8 = 0
        return read(waker.readFD, &byte, 1) == 1
    }

    func testWakesOnlyAParkedPoller() throws {
        let waker = try LoopWaker()
        waker.wakeIfParked()
        XCTAssertFalse(pipeHoldsByte(waker), "nobody waits: no system call, no byte")
        waker.parked.store(true, ordering: .sequentiallyConsistent)
        waker.wakeIfParked()
        XCTAssertTrue(pipeHoldsByte(waker))
    }

    func testDrainEmptiesThePipe() throws {
        let waker = try LoopWaker()
        waker.parked.store(true, ordering: .sequentiallyConsistent)
        for _ in 0..<100 { waker.wakeIfParked() }
        waker.drain()
        XCTAssertFalse(pipeHoldsByte(waker))
    }

    func testQueuedBlocksCountAsPendingUntilTheyRun() throws {
        let loop = EventLoop(label: "test.waker")
        let waker = try XCTUnwrap(loop.waker)
        let gate = DispatchSemaphore(value: 0)
        let blocked = DispatchSemaphore(value: 0)
        loop.queue.async {
            blocked.signal()
            gate.wait()
        }
        blocked.wait()
        let ran = EventLog<Int>()
        loop.async { ran.append(1) }
        loop.async { ran.append(2) }
        XCTAssertEqual(waker.pending.load(ordering: .sequentiallyConsistent), 2)
        gate.signal()
        XCTAssertEqual(ran.waitForCount(2), [1, 2])
        loop.queue.sync {}
        XCTAssertEqual(waker.pending.load(ordering: .sequentiallyConsistent), 0)
    }
}
