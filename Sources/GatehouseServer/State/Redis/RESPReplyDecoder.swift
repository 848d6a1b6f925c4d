import NIOCore

/// Turns the server's byte stream into `RESPValue`s. Throws (and so closes the connection)
/// on a protocol error, or when one incomplete reply holds more than `maxReplyBytes`.
struct RESPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue

    let parser: RESPParser

    init(limits: RESPParser.Limits = RESPParser.Limits()) {
        self.parser = RESPParser(limits: limits)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.parse(&buffer) else {
            guard buffer.readableBytes <= parser.limits.maxReplyBytes else {
                throw RESPProtocolError(message: "incomplete reply over \(parser.limits.maxReplyBytes) bytes")
            }
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(value))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A half reply at EOF is dropped: its command fails with the closed connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
