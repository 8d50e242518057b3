// memlens/monitor/endpoint.hpp: a small HTTP/1.1 endpoint on one thread of its own, serving
// /metrics (Prometheus), /snapshot.json and the HTML report, for a scraper or a browser.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../view/html.hpp"
#include "../view/json.hpp"
#include "../view/prometheus.hpp"
#include "monitor.hpp"

MEMLENS_NAMESPACE_BEGIN

/// How serve_metrics() listens and what it serves. The providers run on the endpoint's thread,
/// once per /metrics request, with their allocations uncounted as the endpoint's own are; the
/// process monitor plugs in here, each provider returning the monitor's latest figures or alert
/// states.
struct endpoint_options {
    /// The address to listen on, IPv4 or IPv6 numeric. Loopback unless the caller asks otherwise:
    /// the pages show what the program allocates, and where.
    std::string address = "127.0.0.1";
    /// The TCP port; 0 lets the system choose one (see metrics_endpoint::port()).
    std::uint16_t port = 0;
    /// Connections served at once; one more is answered 503 and closed at once.
    std::size_t max_connections = 64;
    /// Largest request head accepted; a longer one is answered 431 and closed.
    std::size_t max_request_bytes = 8192;
    /// Time a connection may take from accept to its response's last byte; a slower client is
    /// dropped.
    std::chrono::milliseconds deadline{5000};
    /// Linux's figures of the process for /metrics; none when empty or when it returns nullopt.
    std::function<std::optional<process_figures>()> process;
    /// Alert states for /metrics; none when empty.
    std::function<std::vector<alert_state>()> alerts;
    /// What the HTML report at / and /report.html shows.
    html_options html;
};

/// Counts of what an endpoint did, for tests and its own monitoring.
struct endpoint_counts {
    std::uint64_t served = 0;     ///< responses 200 written in full
    std::uint64_t refused = 0;    ///< connections answered 503: max_connections were open
    std::uint64_t rejected = 0;   ///< requests answered 400, 404, 405, 431 or 500
    std::uint64_t timed_out = 0;  ///< connections dropped at their deadline
};

namespace detail {

// What parse_http_request() made of the bytes so far.
enum class http_parse { incomplete, complete, bad };

// A request head: its method and path (the target without its query), and the bytes it took.
struct http_request {
    http_parse status = http_parse::incomplete;
    std::string_view method;
    std::string_view path;
    std::size_t length = 0;  // bytes up to and including the blank line, when complete
};

inline bool http_token_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Reads an HTTP/1.0 or 1.1 request head (RFC 9112): request line, header fields, blank line.
// Line ends are CRLF or LF. Pure: it reads only `text`, never allocates, and the views it
// returns point into `text`. A body, if any, is not read (every response closes the connection).
inline http_request parse_http_request(std::string_view text) noexcept {
    http_request r;
    const auto bad = [&r] {
        r.status = http_parse::bad;
        r.method = {};
        r.path = {};
        return r;
    };
    std::size_t i = 0;
    // method
    while (i < text.size() && http_token_char(text[i])) ++i;
    if (i == text.size()) return r;
    if (i == 0 || text[i] != ' ') return bad();
    r.method = text.substr(0, i);
    const std::size_t target = ++i;
    // origin-form target: printable ASCII, no spaces
    while (i < text.size() && text[i] != ' ') {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c <= 0x20 || c >= 0x7F) return bad();
        ++i;
    }
    if (i == text.size()) return r;
    if (i == target || text[target] != '/') return bad();
    std::string_view path = text.substr(target, i - target);
    const std::size_t query = path.find('?');
    if (query != std::string_view::npos) path = path.substr(0, query);
    ++i;
    // version: a prefix of one is incomplete, anything else is bad
    const std::string_view rest = text.substr(i);
    constexpr std::string_view v11 = "HTTP/1.1", v10 = "HTTP/1.0";
    if (rest.size() < v11.size()) {
        if (rest == v11.substr(0, rest.size()) || rest == v10.substr(0, rest.size())) return r;
        return bad();
    }
    if (rest.substr(0, v11.size()) != v11 && rest.substr(0, v10.size()) != v10) return bad();
    i += v11.size();
    if (i == text.size()) return r;
    // end of the request line
    if (text[i] == '\r') {
        if (++i == text.size()) return r;
    }
    if (text[i] != '\n') return bad();
    ++i;
    // header fields up to the blank line
    for (;;) {
        if (i == text.size()) return r;
        if (text[i] == '\r') {
            if (i + 1 == text.size()) return r;
            if (text[i + 1] != '\n') return bad();
            r.length = i + 2;
            break;
        }
        if (text[i] == '\n') {
            r.length = i + 1;
            break;
        }
        const std::size_t name = i;
        while (i < text.size() && http_token_char(text[i])) ++i;
        if (i == text.size()) return r;
        if (i == name || text[i] != ':') return bad();
        for (++i; i < text.size() && text[i] != '\n'; ++i) {
            const unsigned char c = static_cast<unsigned char>(text[i]);
            if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) return bad();
            if (c == '\r' && i + 1 < text.size() && text[i + 1] != '\n') return bad();
        }
        if (i == text.size()) return r;
        ++i;
    }
    r.status = http_parse::complete;
    r.path = path;
    return r;
}

// One client of the endpoint: what it sent, and what it is sent back.
struct endpoint_connection {
    int fd = -1;
    std::chrono::steady_clock::time_point deadline;
    std::string in;
    std::string out;
    std::size_t sent = 0;
    bool writing = false;
    // Response sent and our side shut: reading what the client still sends until it closes, so
    // that closing with unread bytes does not reset the connection and lose the response.
    bool draining = false;
};

class endpoint_server {
public:
    endpoint_server(endpoint_options options) : options_(std::move(options)) {
        if (options_.max_connections == 0) options_.max_connections = 1;
        if (options_.max_request_bytes < 64) options_.max_request_bytes = 64;
        listen_on();
        wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_ < 0) {
            const int e = errno;
            ::close(listener_);
            throw std::runtime_error(std::string("memlens: endpoint: eventfd: ") + std::strerror(e));
        }
        owner_ = ::getpid();
        running_.store(true, std::memory_order_release);
        try {
            thread_ = std::make_unique<std::thread>([this] { run(); });
        } catch (...) {
            running_.store(false, std::memory_order_release);
            ::close(listener_);
            ::close(wake_);
            throw;
        }
    }
    ~endpoint_server() { stop(); }
    endpoint_server(const endpoint_server&) = delete;
    endpoint_server& operator=(const endpoint_server&) = delete;

    void stop() noexcept {
        if (!thread_) return;
        if (::getpid() != owner_) {
            // A child after fork(): the thread exists only in the parent, so there is nothing
            // to join or detach; the object is left behind and the child's copies closed.
            static_cast<void>(thread_.release());
            ::close(listener_);
            ::close(wake_);
            running_.store(false, std::memory_order_release);
            return;
        }
        const std::uint64_t one = 1;
        [[maybe_unused]] const ::ssize_t n = ::write(wake_, &one, sizeof one);
        thread_->join();
        thread_.reset();
        ::close(listener_);
        ::close(wake_);
    }

    std::uint16_t port() const noexcept { return port_; }
    const std::string& address() const noexcept { return options_.address; }
    bool running() const noexcept { return running_.load(std::memory_order_acquire); }

    endpoint_counts counts() const noexcept {
        endpoint_counts c;
        c.served = served_.load(relaxed);
        c.refused = refused_.load(relaxed);
        c.rejected = rejected_.load(relaxed);
        c.timed_out = timed_out_.load(relaxed);
        return c;
    }

private:
    void listen_on() {
        ::sockaddr_storage storage{};
        ::socklen_t length = 0;
        int family = AF_INET;
        auto* v4 = reinterpret_cast<::sockaddr_in*>(&storage);
        auto* v6 = reinterpret_cast<::sockaddr_in6*>(&storage);
        if (::inet_pton(AF_INET, options_.address.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(options_.port);
            length = sizeof *v4;
        } else if (::inet_pton(AF_INET6, options_.address.c_str(), &v6->sin6_addr) == 1) {
            family = AF_INET6;
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(options_.port);
            length = sizeof *v6;
        } else {
            throw std::invalid_argument("memlens: endpoint: '" + options_.address +
                                        "' is not a numeric IPv4 or IPv6 address");
        }
        listener_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listener_ < 0) fail("socket");
        const int yes = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (::bind(listener_, reinterpret_cast<::sockaddr*>(&storage), length) != 0) fail("bind");
        if (::listen(listener_, SOMAXCONN) != 0) fail("listen");
        ::socklen_t got = sizeof storage;
        if (::getsockname(listener_, reinterpret_cast<::sockaddr*>(&storage), &got) != 0) fail("getsockname");
        port_ = ntohs(family == AF_INET ? v4->sin_port : v6->sin6_port);
    }

    [[noreturn]] void fail(const char* what) {
        const int e = errno;
        if (listener_ >= 0) ::close(listener_);
        throw std::runtime_error("memlens: endpoint: " + std::string(what) + " " + options_.address + ":" +
                                 std::to_string(options_.port) + ": " + std::strerror(e));
    }

    // Everything this thread allocates is memlens's own work: under the guard the hooks pass it
    // to malloc uncounted, so scraping never moves the figures it reports.
    void run() noexcept {
        guard quiet;
        ::pthread_setname_np(::pthread_self(), "memlens-http");
        try {
            loop();
        } catch (...) {
            // Out of memory while setting up: the endpoint stops, the host goes on.
            report_error("endpoint: stopped by an exception; /metrics is no longer served");
        }
        for (endpoint_connection& c : connections_) close_connection(c);
        running_.store(false, std::memory_order_release);
    }

    void loop() {
        const std::size_t capacity = options_.max_connections;
        connections_.resize(capacity);
        std::vector<::pollfd> fds(capacity + 2);
        std::vector<std::size_t> slot_of(capacity + 2);
        for (;;) {
            fds[0] = {wake_, POLLIN, 0};
            fds[1] = {listener_, POLLIN, 0};
            std::size_t n = 2;
            auto now = std::chrono::steady_clock::now();
            auto next = now + std::chrono::seconds(1);
            for (std::size_t k = 0; k < capacity; ++k) {
                endpoint_connection& c = connections_[k];
                if (c.fd < 0) continue;
                if (c.deadline <= now) {
                    if (!c.draining) timed_out_.fetch_add(1, relaxed);
                    close_connection(c);
                    continue;
                }
                if (c.deadline < next) next = c.deadline;
                fds[n] = {c.fd, static_cast<short>(c.writing && !c.draining ? POLLOUT : POLLIN), 0};
                slot_of[n++] = k;
            }
            // Out of descriptors: the listener would stay readable and spin the loop, so it
            // rests until the pause ends.
            if (now < accept_paused_until_) {
                fds[1].fd = -1;
                if (accept_paused_until_ < next) next = accept_paused_until_;
            }
            const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
            const int ready = ::poll(fds.data(), static_cast<::nfds_t>(n), static_cast<int>(wait));
            if (ready < 0) {
                if (errno == EINTR) continue;
                report_error("endpoint: poll failed; /metrics is no longer served");
                return;
            }
            if (fds[0].revents) return;
            for (std::size_t j = 2; j < n; ++j) {
                if (!fds[j].revents) continue;
                endpoint_connection& c = connections_[slot_of[j]];
                try {
                    step(c, fds[j].revents);
                } catch (...) {
                    // Out of memory for this one response: the others go on.
                    close_connection(c);
                }
            }
            if (fds[1].revents & POLLIN) accept_all();
        }
    }

    void accept_all() {
        for (;;) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    accept_paused_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
                }
                return;  // EAGAIN: all taken
            }
            endpoint_connection* free_slot = nullptr;
            for (endpoint_connection& c : connections_) {
                if (c.fd < 0) {
                    free_slot = &c;
                    break;
                }
            }
            if (!free_slot) {
                static constexpr char busy[] =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                    "Content-Length: 5\r\nConnection: close\r\nRetry-After: 1\r\n\r\nbusy\n";
                [[maybe_unused]] const ::ssize_t w = ::send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
                ::close(fd);
                refused_.fetch_add(1, relaxed);
                continue;
            }
            endpoint_connection& c = *free_slot;
            c.fd = fd;
            c.deadline = std::chrono::steady_clock::now() + options_.deadline;
            c.in.clear();
            c.out.clear();
            c.sent = 0;
            c.writing = false;
            c.draining = false;
        }
    }

    void step(endpoint_connection& c, short events) {
        if (c.draining) {
            char buffer[4096];
            for (;;) {
                const ::ssize_t got = ::recv(c.fd, buffer, sizeof buffer, 0);
                if (got > 0) continue;
                if (got < 0 && errno == EINTR) continue;
                if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
                return close_connection(c);
            }
        }
        if (!c.writing) {
            if (events & (POLLERR | POLLNVAL)) return close_connection(c);
            char buffer[4096];
            for (;;) {
                const ::ssize_t got = ::recv(c.fd, buffer, sizeof buffer, 0);
                if (got > 0) {
                    const std::size_t room = options_.max_request_bytes - c.in.size();
                    const std::size_t take = static_cast<std::size_t>(got) < room ? static_cast<std::size_t>(got) : room;
                    c.in.append(buffer, take);
                    if (take < static_cast<std::size_t>(got) || c.in.size() >= options_.max_request_bytes) break;
                    continue;
                }
                if (got == 0) {
                    // The client closed its side before a complete request: nothing to answer.
                    if (parse_http_request(c.in).status != http_parse::complete) return close_connection(c);
                    break;
                }
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return close_connection(c);
            }
            const http_request r = parse_http_request(c.in);
            if (r.status == http_parse::incomplete) {
                if (c.in.size() < options_.max_request_bytes) return;
                respond(c, 431, "Request Header Fields Too Large", "text/plain", "request too large\n", false);
            } else if (r.status == http_parse::bad) {
                respond(c, 400, "Bad Request", "text/plain", "bad request\n", false);
            } else {
                answer(c, r);
            }
            c.writing = true;
        }
        write_some(c);
    }

    void write_some(endpoint_connection& c) {
        while (c.sent < c.out.size()) {
            const ::ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            return close_connection(c);
        }
        ::shutdown(c.fd, SHUT_WR);
        c.draining = true;
        std::string().swap(c.out);
        c.sent = 0;
    }

    void answer(endpoint_connection& c, const http_request& r) {
        const bool head = r.method == "HEAD";
        if (r.method != "GET" && !head) {
            respond(c, 405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
            return;
        }
        try {
            if (r.path == "/metrics") {
                std::optional<process_figures> process;
                if (options_.process) process = options_.process();
                std::vector<alert_state> alerts;
                if (options_.alerts) alerts = options_.alerts();
                const metrics_input in = collect_metrics(process ? &*process : nullptr, alerts);
                respond(c, 200, "OK", prometheus_content_type, to_prometheus(in), head);
            } else if (r.path == "/snapshot.json") {
                respond(c, 200, "OK", "application/json", to_json(take_snapshot()), head);
            } else if (r.path == "/" || r.path == "/report.html") {
                respond(c, 200, "OK", "text/html; charset=utf-8", to_html(take_snapshot(), options_.html), head);
            } else {
                respond(c, 404, "Not Found", "text/plain", "not found: try /metrics, /snapshot.json or /report.html\n", head);
            }
        } catch (...) {
            c.out.clear();
            respond(c, 500, "Internal Server Error", "text/plain", "the page could not be made\n", head);
        }
    }

    void respond(endpoint_connection& c, int code, std::string_view reason, std::string_view type,
                 std::string_view body, bool head, std::string_view extra = {}) {
        if (code == 200) served_.fetch_add(1, relaxed);
        else rejected_.fetch_add(1, relaxed);
        std::string& o = c.out;
        o.clear();
        o.reserve(160 + (head ? 0 : body.size()));
        o += "HTTP/1.1 ";
        o += std::to_string(code);
        o += ' ';
        o += reason;
        o += "\r\nContent-Type: ";
        o += type;
        o += "\r\nContent-Length: ";
        o += std::to_string(body.size());
        o += "\r\nCache-Control: no-store\r\nConnection: close\r\n";
        o += extra;
        o += "\r\n";
        if (!head) o += body;
        c.sent = 0;
        // What the client sent is no longer needed; its buffer goes back at once.
        std::string().swap(c.in);
    }

    void close_connection(endpoint_connection& c) noexcept {
        if (c.fd < 0) return;
        ::close(c.fd);
        c.fd = -1;
        c.writing = false;
        c.draining = false;
        std::string().swap(c.in);
        std::string().swap(c.out);
        c.sent = 0;
    }

    endpoint_options options_;
    int listener_ = -1;
    int wake_ = -1;
    std::uint16_t port_ = 0;
    ::pid_t owner_ = 0;
    std::chrono::steady_clock::time_point accept_paused_until_{};
    std::vector<endpoint_connection> connections_;
    std::atomic<bool> running_{false};
    std::atomic<std::uint64_t> served_{0};
    std::atomic<std::uint64_t> refused_{0};
    std::atomic<std::uint64_t> rejected_{0};
    std::atomic<std::uint64_t> timed_out_{0};
    std::unique_ptr<std::thread> thread_;
};

}  // namespace detail

/// A running endpoint: GET /metrics (Prometheus text 0.0.4), /snapshot.json (to_json) and / or
/// /report.html (to_html); 404 for other paths, 405 for other methods, 400 for a malformed
/// request, 431 for one longer than max_request_bytes. One thread polls every socket, none of
/// them blocking; each response closes its connection. Its allocations are memlens's own work
/// and are not counted. stop() or the destructor stops and joins the thread. Movable.
class metrics_endpoint {
public:
    /// Listens and starts the thread. Throws std::invalid_argument for an address that is not
    /// numeric, std::runtime_error naming the address, port and reason when it cannot listen.
    explicit metrics_endpoint(endpoint_options options = {}) {
        detail::guard quiet;
        server_ = std::make_unique<detail::endpoint_server>(std::move(options));
    }
    /// Stops, as stop() does.
    ~metrics_endpoint() { stop(); }
    /// Takes `other`'s running endpoint; `other` is left stopped.
    metrics_endpoint(metrics_endpoint&& other) noexcept = default;
    /// Stops this endpoint and takes `other`'s.
    metrics_endpoint& operator=(metrics_endpoint&& other) noexcept {
        if (this != &other) {
            stop();
            server_ = std::move(other.server_);
        }
        return *this;
    }

    /// Closes every connection and the listening socket and joins the thread, which first
    /// finishes the response it is building; idempotent. Not to be called from a provider (the
    /// endpoint's own thread).
    void stop() noexcept {
        if (!server_) return;
        detail::guard quiet;
        server_->stop();
        server_.reset();
    }

    /// The port it listens on (the one chosen when options.port was 0); 0 once stopped.
    std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }

    /// The address it listens on; empty once stopped.
    std::string address() const { return server_ ? server_->address() : std::string(); }

    /// Whether its thread is serving.
    bool running() const noexcept { return server_ && server_->running(); }

    /// What it has done so far.
    endpoint_counts counts() const noexcept { return server_ ? server_->counts() : endpoint_counts{}; }

private:
    std::unique_ptr<detail::endpoint_server> server_;
};

/// Starts an endpoint with `options`: `auto e = memlens::serve_metrics();` then scrape
/// http://127.0.0.1:<e.port()>/metrics. Throws as metrics_endpoint's constructor does.
inline metrics_endpoint serve_metrics(endpoint_options options = {}) {
    return metrics_endpoint(std::move(options));
}

/// Makes the endpoint's /metrics carry `source`'s newest process figures and its alert rules'
/// states: sets `options.process` and `options.alerts`. `source` must outlive the endpoint.
inline void report_monitor(endpoint_options& options, const monitor& source) {
    options.process = [&source]() -> std::optional<process_figures> {
        monitor_sample newest;
        if (!source.latest(newest)) return std::nullopt;
        return newest.process;
    };
    options.alerts = [&source] { return source.alerts(); };
}

MEMLENS_NAMESPACE_END
