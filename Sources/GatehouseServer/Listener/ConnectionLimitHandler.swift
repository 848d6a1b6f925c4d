import NIOCore

/// Caps a listener's open connections by withholding `read()` on the server channel at the
/// limit: the kernel's accept queue holds new clients until a slot frees, nothing is
/// dropped and nothing crashes. Lives in the server channel's pipeline.
final class ConnectionLimitHandler: ChannelDuplexHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel
    typealias OutboundIn = Never

    private let maxConnections: Int
    private var open = 0
    private var readPending = false

    init(maxConnections: Int) {
        self.maxConnections = maxConnections
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        open += 1
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        child.closeFuture.hop(to: context.eventLoop).whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.connectionClosed(context: context)
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        if open >= maxConnections {
            readPending = true
        } else {
            context.read()
        }
    }

    private func connectionClosed(context: ChannelHandlerContext) {
        open -= 1
        if readPending && open < maxConnections {
            readPending = false
            context.read()
        }
    }
}

@available(*, unavailable)
extension ConnectionLimitHandler: Sendable {}
