import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import FastPush

@Suite struct OutboundBufferTests {
    /// What TLS does: plaintext taken by the layer below, its completions waiting for the
    /// ciphertext's send, and only those that were due.
    @Test func completionsMoveWithTheBytesToTheBufferBelow() {
        var plain = OutboundBuffer(), cipher = OutboundBuffer()
        var ran: [Int] = []
        plain.append(copying: [1, 2, 3])
        plain.onSent { _ in ran.append(1) }
        plain.append(copying: [4, 5])
        plain.onSent { _ in ran.append(2) }
        cipher.append(copying: [9, 9, 9, 9])  // the first three bytes, encrypted
        plain.consume(3, movingCompletionsTo: &cipher)
        #expect(ran.isEmpty, "not before the ciphertext is sent")
        #expect(plain.pendingBytes == 2 && plain.pendingCompletions == 1)
        #expect(cipher.pendingCompletions == 1)
        cipher.consume(4)
        #expect(ran == [1])
        plain.fail()
        #expect(ran == [1, 2], "the rest fails on the plaintext side")
    }

    @Test func sharedSlicesAreReferencedNotCopied() {
        let body = SharedBytes([UInt8](repeating: 0xAB, count: 10_000))
        var out = OutboundBuffer()
        out.append(copying: [1, 2, 3])
        out.append(ByteSlice(body, offset: 100, count: 5_000))
        out.append(copying: [4, 5])
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 8)
        defer { iov.deallocate() }
        let (n, bytes) = out.fill(iov, capacity: 8, maxBytes: 1 << 20)
        #expect(n == 3)
        #expect(bytes == 5_005)
        // The middle iovec points into the shared storage itself.
        #expect(UnsafeRawPointer(iov[1].iov_base!) == body.base + 100)
        #expect(iov[1].iov_len == 5_000)
    }

    @Test func adjacentCopiesMergeIntoOneIovec() {
        var out = OutboundBuffer()
        out.append(copying: [1, 2])
        out.append(copying: [3])
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 8)
        defer { iov.deallocate() }
        #expect(out.fill(iov, capacity: 8, maxBytes: 100).count == 1)
        #expect(out.drain() == [1, 2, 3])
    }

    @Test func partialConsumeResumesAndRunsCompletionsInOrder() {
        var out = OutboundBuffer()
        var fired: [Int] = []
        out.append(copying: [1, 2, 3, 4])
        out.onSent { _ in fired.append(1) }
        out.append(ByteSlice(SharedBytes([5, 6, 7])))
        out.onSent { _ in fired.append(2) }
        out.consume(3)
        #expect(fired.isEmpty)
        #expect(out.pendingBytes == 4)
        out.consume(1)
        #expect(fired == [1])
        #expect(out.drain() == [5, 6, 7])
        #expect(fired == [1, 2])
        #expect(out.isEmpty)
    }

    @Test func failRunsPendingCompletionsWithFalse() {
        var out = OutboundBuffer()
        var results: [Bool] = []
        out.append(copying: [1])
        out.onSent { results.append($0) }
        out.fail()
        #expect(results == [false])
        #expect(out.isEmpty)
        out.onSent { results.append($0) }
        #expect(results == [false, true])
    }

    @Test func maxBytesTruncatesTheLastIovec() {
        var out = OutboundBuffer()
        out.append(ByteSlice(SharedBytes([UInt8](repeating: 1, count: 1000))))
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
        defer { iov.deallocate() }
        let (n, bytes) = out.fill(iov, capacity: 4, maxBytes: 300)
        #expect(n == 1 && bytes == 300 && iov[0].iov_len == 300)
    }
}
