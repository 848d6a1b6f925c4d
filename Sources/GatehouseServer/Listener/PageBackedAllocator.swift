@_spi(CustomByteBufferAllocator) import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The byte-buffer allocator of client connections: large buffers get their own pages.
///
/// NIOSSL gives every connection a 32 KiB read buffer and a 16 KiB write buffer for its
/// whole life, though an idle keep-alive connection holds a few hundred bytes in them. From
/// malloc's heap those buffers reuse memory other connections already touched, so most of
/// their 48 KiB stay resident. Mapped straight from the kernel, a buffer costs only the pages
/// actually written, and goes back to the kernel when freed. Buffers under the threshold,
/// which come and go per request, stay with malloc.
enum PageBackedAllocator {
    /// Allocations from this size on are mapped (one `mmap` per connection per buffer; the
    /// per-request buffers are far smaller).
    static let threshold = 16 * 1024

    static let allocator = ByteBufferAllocator(
        allocate: pageBackedAllocate, reallocate: pageBackedReallocate, deallocate: pageBackedDeallocate,
        copy: pageBackedCopy)
}

/// Every block starts with a 16-byte header (keeping the payload 16-byte aligned): the size
/// of the mapping, or 0 for a malloc'd block.
private let headerSize = 16

private func pageBackedAllocate(_ size: size_t) -> UnsafeMutableRawPointer? {
    let total = Int(size) + headerSize
    let block: UnsafeMutableRawPointer
    let mappedLength: Int
    if Int(size) >= PageBackedAllocator.threshold {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = (total + page - 1) / page * page
        guard let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapped != MAP_FAILED
        else { return nil }
        block = mapped
        mappedLength = length
    } else {
        guard let allocated = malloc(total) else { return nil }
        block = allocated
        mappedLength = 0
    }
    block.storeBytes(of: mappedLength, as: Int.self)
    return block + headerSize
}

private func pageBackedDeallocate(_ pointer: UnsafeMutableRawPointer) {
    let block = pointer - headerSize
    let mappedLength = block.load(as: Int.self)
    if mappedLength > 0 {
        munmap(block, mappedLength)
    } else {
        free(block)
    }
}

private func pageBackedReallocate(
    _ pointer: UnsafeMutableRawPointer?, _ oldSize: size_t, _ newSize: size_t
) -> UnsafeMutableRawPointer? {
    guard let pointer else { return pageBackedAllocate(newSize) }
    let block = pointer - headerSize
    if block.load(as: Int.self) == 0 && Int(newSize) < PageBackedAllocator.threshold {
        guard let grown = realloc(block, Int(newSize) + headerSize) else { return nil }
        return grown + headerSize
    }
    guard let moved = pageBackedAllocate(newSize) else { return nil }
    moved.copyMemory(from: pointer, byteCount: Int(min(oldSize, newSize)))
    pageBackedDeallocate(pointer)
    return moved
}

private func pageBackedCopy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: size_t) {
    destination.copyMemory(from: source, byteCount: Int(count))
}
