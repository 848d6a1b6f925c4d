import NIOConcurrencyHelpers
import NIOCore

/// One object per event loop, made on first use and kept for the process's life (as the
/// loops are): a connection looks its loop's up once, and a request then touches state no
/// other loop touches. At most `limit` loops get one of their own; past that, `value(for:)`
/// answers nil and the caller shares something instead.
final class PerEventLoop<Value: AnyObject & Sendable>: Sendable {
    private let values = NIOLockedValueBox<(byLoop: [ObjectIdentifier: Value], all: [Value])>(([:], []))
    private let limit: Int
    private let make: @Sendable () -> Value

    init(limit: Int, make: @escaping @Sendable () -> Value) {
        self.limit = limit
        self.make = make
    }

    /// `eventLoop`'s value, made now if it has none; nil past the limit.
    func value(for eventLoop: any EventLoop) -> Value? {
        values.withLockedValue { values in
            if let value = values.byLoop[ObjectIdentifier(eventLoop)] { return value }
            guard values.byLoop.count < limit else { return nil }
            let value = make()
            values.byLoop[ObjectIdentifier(eventLoop)] = value
            values.all.append(value)
            return value
        }
    }

    /// Every value made so far, in the order made.
    var all: [Value] { values.withLockedValue { $0.all } }
}
