// libFuzzer target for the endpoint's request parser: any input is incomplete, complete or bad,
// never read past its end; a complete head lies inside the input with a path that starts with
// '/', and it was incomplete one byte earlier; a bad input stays bad whatever follows.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <memlens/monitor/endpoint.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using memlens::detail::http_parse;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const memlens::detail::http_request r = memlens::detail::parse_http_request(text);
    const auto inside = [&](std::string_view part) {
        return part.empty() || (part.data() >= text.data() && part.data() + part.size() <= text.data() + text.size());
    };
    if (!inside(r.method) || !inside(r.path)) std::abort();
    switch (r.status) {
    case http_parse::complete:
        if (r.length == 0 || r.length > size || r.method.empty() || r.path.empty() || r.path[0] != '/') std::abort();
        if (memlens::detail::parse_http_request(text.substr(0, r.length - 1)).status != http_parse::incomplete) {
            std::abort();
        }
        break;
    case http_parse::bad: {
        const std::string longer = std::string(text) + "\r\n\r\n";
        if (memlens::detail::parse_http_request(longer).status != http_parse::bad) std::abort();
        break;
    }
    case http_parse::incomplete:
        if (r.length != 0) std::abort();
        break;
    }
    return 0;
}
