// memlens/detail/gzip.hpp: a gzip member (RFC 1952) around stored deflate blocks (RFC 1951),
// with the CRC-32 it needs: valid gzip that every reader inflates, without a compression library.
#pragma once

#include <cstdint>
#include <string>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// The CRC-32 of gzip and zlib (reflected polynomial 0xEDB88320), over `size` bytes.
inline std::uint32_t crc32(const char* data, std::size_t size) noexcept {
    std::uint32_t table[256];
    for (std::uint32_t n = 0; n < 256; ++n) {
        std::uint32_t c = n;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < size; ++i) {
        crc = table[(crc ^ static_cast<unsigned char>(data[i])) & 0xFFu] ^ (crc >> 8);
    }
    return crc ^ 0xFFFFFFFFu;
}

inline void append_le(std::string& out, std::uint32_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFFu);
}

// `data` as one gzip member of stored blocks: 18 bytes of header and trailer and 5 per 64 KiB
// more than the data itself. Readers need no more than that to open it.
inline std::string gzip_stored(const std::string& data) {
    std::string out;
    out.reserve(data.size() + data.size() / 65535 * 5 + 32);
    // Magic, deflate, no flags, no time, no extra flags, "unknown" operating system.
    out.append("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
    std::size_t at = 0;
    do {
        const std::size_t n = data.size() - at < 65535 ? data.size() - at : 65535;
        const bool last = at + n == data.size();
        out += static_cast<char>(last ? 1 : 0);  // BFINAL, then BTYPE 00: stored
        append_le(out, static_cast<std::uint32_t>(n), 2);
        append_le(out, static_cast<std::uint32_t>(~n & 0xFFFFu), 2);
        out.append(data, at, n);
        at += n;
    } while (at < data.size());
    append_le(out, crc32(data.data(), data.size()), 4);
    append_le(out, static_cast<std::uint32_t>(data.size() & 0xFFFFFFFFu), 4);
    return out;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
