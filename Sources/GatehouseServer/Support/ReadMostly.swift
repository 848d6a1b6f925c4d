import NIOConcurrencyHelpers
import Synchronization

/// A value every event loop reads on every request and something rarely replaces (the
/// running configuration, the token verifier).
///
/// A reader keeps a ``Reading`` (the value with the version it was read at) and passes it to
/// ``read(reusing:)``. While nothing was replaced, a read is one atomic load of a cache line
/// that stays shared between the cores, instead of a lock and a retain of the value whose
/// cache lines would bounce between the event loops on every request. After a replace, one
/// locked read refreshes the reader's copy. A reader sees a replace at its next read, as it
/// would with a lock taken per read.
final class ReadMostly<Value: Sendable>: Sendable {
    struct Reading {
        fileprivate let version: Int
        let value: Value
    }

    /// Versions are unique across instances, so a reading can only match the box it came from.
    private static var nextVersion: Int { versions.add(1, ordering: .relaxed).oldValue }
    private let published: Synchronization.Atomic<Int>
    private let current: NIOLockedValueBox<Reading>

    init(_ value: Value) {
        let version = Self.nextVersion
        self.current = NIOLockedValueBox(Reading(version: version, value: value))
        self.published = Atomic(version)
    }

    /// The value, from `reading` while it is current; otherwise read afresh into it.
    func read(reusing reading: inout Reading?) -> Value {
        if let reading, reading.version == published.load(ordering: .acquiring) { return reading.value }
        let fresh = current.withLockedValue { $0 }
        reading = fresh
        return fresh.value
    }

    /// The value, with a lock: for callers off the request path.
    var value: Value { current.withLockedValue { $0.value } }

    func replace(with value: Value) {
        _ = replace(with: value, ifCurrent: { _ in true })
    }

    /// Replaces `expected` (compared by `isExpected`) only if it is still the current value.
    func replace(with value: Value, ifCurrent isExpected: (Value) -> Bool) -> Bool {
        current.withLockedValue { current in
            guard isExpected(current.value) else { return false }
            current = Reading(version: Self.nextVersion, value: value)
            published.store(current.version, ordering: .releasing)
            return true
        }
    }
}

private let versions = Synchronization.Atomic<Int>(1)
