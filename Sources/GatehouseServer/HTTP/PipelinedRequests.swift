import NIOCore
import NIOHTTP1

/// Requests a client pipelined behind the one in flight, held until that exchange ends.
///
/// NIO's `HTTPServerPipelineHandler` does this by withholding `read()` for every response,
/// which costs two `epoll_ctl` calls per request on every keep-alive connection. Clients
/// rarely pipeline, so this queue reads on and only withholds reads once it is full.
struct PipelinedRequests {
    enum Event {
        case part(HTTPServerRequestPart)
        case parserError(HTTPParserError)
    }

    /// Parts (heads, body chunks, ends) held at most, and body bytes held at most.
    static let maxEvents = 64
    static let maxBodyBytes = 64 * 1024

    // Smallest start: almost no client pipelines, and every idle connection carries this queue.
    private var events = CircularBuffer<Event>(initialCapacity: 1)
    private var bodyBytes = 0

    var isEmpty: Bool { events.isEmpty }

    /// True once the queue holds as much as it may: the caller stops reading from the client.
    var isFull: Bool { events.count >= Self.maxEvents || bodyBytes >= Self.maxBodyBytes }

    mutating func append(_ event: Event) {
        if case .part(.body(let body)) = event { bodyBytes += body.readableBytes }
        events.append(event)
    }

    mutating func popFirst() -> Event? {
        guard let event = events.popFirst() else { return nil }
        if case .part(.body(let body)) = event { bodyBytes -= body.readableBytes }
        return event
    }

    mutating func removeAll() {
        events.removeAll()
        bodyBytes = 0
    }
}
