// monitor/endpoint.hpp: the request parser, then the endpoint over real loopback sockets: exact
// figures, errors, slow and oversized clients, many connections at once, and bounded memory.
#include <memlens/monitor/endpoint.hpp>
#include <memlens/sources/record.hpp>

#include <catch2/catch.hpp>

#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "prometheus_grammar.hpp"

namespace {

using memlens::detail::http_parse;
using memlens::detail::parse_http_request;

// A blocking loopback client with a 5-second limit on each read and write; -1 when it cannot
// connect.
int http_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    ::timeval limit{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    ::sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<::sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void http_send(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ::ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}

// Everything until the server closes (or the read limit passes).
std::string http_read(int fd) {
    std::string out;
    char buffer[8192];
    for (;;) {
        const ::ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

std::string http_talk(std::uint16_t port, const std::string& request) {
    const int fd = http_connect(port);
    if (fd < 0) return "(no connection)";
    http_send(fd, request);
    std::string response = http_read(fd);
    ::close(fd);
    return response;
}

std::string http_get(std::uint16_t port, const std::string& path) {
    return http_talk(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n");
}

std::string http_body(const std::string& response) {
    const std::size_t at = response.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : response.substr(at + 4);
}

bool http_starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("parse_http_request reads a request head, or says why not", "[endpoint]") {
    const std::string request = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nbody";
    const auto r = parse_http_request(request);
    REQUIRE(r.status == http_parse::complete);
    CHECK(r.method == "GET");
    CHECK(r.path == "/metrics");
    CHECK(r.length == request.size() - 4);
    // Every proper prefix of a good head is incomplete, never bad.
    for (std::size_t n = 0; n < r.length; ++n) {
        INFO("prefix of " << n << " bytes");
        CHECK(parse_http_request(std::string_view(request).substr(0, n)).status == http_parse::incomplete);
    }
    const auto lf = parse_http_request("HEAD / HTTP/1.0\nHost: a\n\n");
    CHECK(lf.status == http_parse::complete);
    CHECK(lf.method == "HEAD");
    CHECK(lf.path == "/");
    for (const char* bad : {" / HTTP/1.1\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
                            "GET / HTTP/2.0\r\n\r\n", "GET / FTP\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
                            "GET / HTTP/1.1\r\nno colon\r\n\r\n", "GET / HTTP/1.1\r\n: empty\r\n\r\n",
                            "GET / HTTP/1.1\r\nA: \x01\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n",
                            "G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\rX\r\n\r\n", "\x16\x03\x01\x02"}) {
        INFO(bad);
        CHECK(parse_http_request(bad).status == http_parse::bad);
    }
}

TEST_CASE("the endpoint serves /metrics with memlens's exact figures, uncounted", "[endpoint]") {
    const memlens::domain fixed = memlens::domain::named("endpoint.fixed");
    memlens::record_alloc(nullptr, 12345, fixed);
    memlens::metrics_endpoint e = memlens::serve_metrics();
    REQUIRE(e.port() != 0);
    CHECK(e.address() == "127.0.0.1");
    CHECK(e.running());

    std::string first, second;
    memlens::memory_stats after;
    {
        // The test's own allocations uncounted too: then nothing may move the figures at all.
        memlens::detail::guard quiet;
        first = http_get(e.port(), "/metrics");
        second = http_get(e.port(), "/metrics");
        after = memlens::stats();
    }
    REQUIRE(http_starts(first, "HTTP/1.1 200 OK\r\n"));
    CHECK(first.find("\r\nContent-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(first.find("\r\nConnection: close\r\n") != std::string::npos);
    const std::string body = http_body(first);
    CHECK(first.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
    const auto one = prometheus_grammar::check(body);
    const auto two = prometheus_grammar::check(http_body(second));
    CHECK(one.at("memlens_domain_live_bytes{domain=\"endpoint.fixed\"}") == 12345);
    CHECK(one.at("memlens_domain_live_bytes{domain=\"endpoint.fixed\"}") ==
          double(memlens::stats(fixed).current));
    // The endpoint's work between and during the two requests counted nothing.
    CHECK(one.at("memlens_allocations_total") == two.at("memlens_allocations_total"));
    CHECK(one.at("memlens_allocated_bytes_total") == two.at("memlens_allocated_bytes_total"));
    CHECK(two.at("memlens_allocations_total") == double(after.allocs));
    CHECK(two.at("memlens_live_bytes") == double(after.current));
    CHECK(e.counts().served == 2);
    memlens::record_free(nullptr, 12345, fixed);
}

TEST_CASE("the endpoint asks its providers for process figures and alerts", "[endpoint]") {
    memlens::endpoint_options options;
    options.process = [] {
        memlens::process_figures p;
        p.rss_bytes = 7 << 20;
        p.threads = 3;
        p.has_status = true;
        return std::optional<memlens::process_figures>(p);
    };
    options.alerts = [] {
        memlens::alert_state a;
        a.name = "rss";
        a.firing = true;
        a.times_fired = 2;
        return std::vector<memlens::alert_state>{a};
    };
    memlens::metrics_endpoint e(std::move(options));
    const auto samples = prometheus_grammar::check(http_body(http_get(e.port(), "/metrics")));
    CHECK(samples.at("memlens_process_resident_bytes") == 7340032);
    CHECK(samples.at("memlens_process_threads") == 3);
    CHECK(samples.at("memlens_alert_firing{rule=\"rss\"}") == 1);
    CHECK(samples.at("memlens_alert_fired_total{rule=\"rss\"}") == 2);
}

TEST_CASE("the endpoint serves the snapshot and the report, and refuses the rest", "[endpoint]") {
    memlens::metrics_endpoint e = memlens::serve_metrics();
    const std::string json = http_get(e.port(), "/snapshot.json");
    REQUIRE(http_starts(json, "HTTP/1.1 200 OK\r\n"));
    CHECK(json.find("Content-Type: application/json") != std::string::npos);
    CHECK_NOTHROW(memlens::from_json(http_body(json)));
    const std::string html = http_get(e.port(), "/report.html");
    REQUIRE(http_starts(html, "HTTP/1.1 200 OK\r\n"));
    CHECK(http_body(html).rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(http_starts(http_get(e.port(), "/"), "HTTP/1.1 200 OK\r\n"));

    CHECK(http_starts(http_get(e.port(), "/nowhere"), "HTTP/1.1 404 Not Found\r\n"));
    const std::string post = http_talk(e.port(), "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    CHECK(http_starts(post, "HTTP/1.1 405 Method Not Allowed\r\n"));
    CHECK(post.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
    const std::string head = http_talk(e.port(), "HEAD /metrics HTTP/1.0\r\n\r\n");
    CHECK(http_starts(head, "HTTP/1.1 200 OK\r\n"));
    CHECK(http_body(head).empty());
    CHECK(head.find("Content-Length: 0\r\n") == std::string::npos);

    CHECK(http_starts(http_talk(e.port(), "GARBAGE\x01\r\n\r\n"), "HTTP/1.1 400 Bad Request\r\n"));
    CHECK(http_starts(http_talk(e.port(), "GET / HTTP/9.9\r\n\r\n"), "HTTP/1.1 400 Bad Request\r\n"));
    // Oversized: answered 431 and closed once the limit is reached, whatever follows.
    const std::string huge = "GET /metrics HTTP/1.1\r\nX-Padding: " + std::string(20000, 'a') + "\r\n\r\n";
    CHECK(http_starts(http_talk(e.port(), huge), "HTTP/1.1 431 "));
    // A client that connects and goes away says nothing and gets nothing.
    ::close(http_connect(e.port()));
    CHECK(e.running());
    CHECK(http_starts(http_get(e.port(), "/metrics"), "HTTP/1.1 200 OK\r\n"));
    const memlens::endpoint_counts c = e.counts();
    CHECK(c.served == 5);
    CHECK(c.rejected == 5);
}

TEST_CASE("a slow client neither blocks another nor outlives its deadline", "[endpoint]") {
    memlens::endpoint_options options;
    options.deadline = std::chrono::milliseconds(300);
    memlens::metrics_endpoint e(std::move(options));
    const int slow = http_connect(e.port());
    REQUIRE(slow >= 0);
    http_send(slow, "GET /metr");
    // Served while the slow client's request is still half sent.
    CHECK(http_starts(http_get(e.port(), "/metrics"), "HTTP/1.1 200 OK\r\n"));
    // The slow one is dropped at its deadline without an answer.
    CHECK(http_read(slow).empty());
    ::close(slow);
    CHECK(e.counts().timed_out == 1);
    CHECK(http_starts(http_get(e.port(), "/metrics"), "HTTP/1.1 200 OK\r\n"));
}

TEST_CASE("200 connections at once are served or refused, and the endpoint lives on", "[endpoint]") {
    memlens::endpoint_options options;
    options.max_connections = 16;
    memlens::metrics_endpoint e(std::move(options));
    std::vector<int> clients;
    for (int k = 0; k < 200; ++k) clients.push_back(http_connect(e.port()));
    std::size_t ok = 0, busy = 0, closed = 0;
    for (const int fd : clients) {
        REQUIRE(fd >= 0);
        http_send(fd, "GET /metrics HTTP/1.1\r\n\r\n");
    }
    for (const int fd : clients) {
        const std::string r = http_read(fd);
        ::close(fd);
        if (http_starts(r, "HTTP/1.1 200 OK\r\n")) ++ok;
        else if (http_starts(r, "HTTP/1.1 503 ")) ++busy;
        else if (r.empty()) ++closed;  // refused before its request arrived: reset
    }
    CHECK(ok + busy + closed == 200);
    CHECK(ok >= 16);
    const memlens::endpoint_counts c = e.counts();
    CHECK(c.served == ok);
    CHECK(c.served + c.refused == 200);
    CHECK(http_starts(http_get(e.port(), "/metrics"), "HTTP/1.1 200 OK\r\n"));
}

TEST_CASE("the endpoint's memory stays bounded over many requests", "[endpoint]") {
    memlens::metrics_endpoint e = memlens::serve_metrics();
    const auto in_use = [] { return static_cast<std::uint64_t>(::mallinfo2().uordblks); };
    for (int k = 0; k < 50; ++k) http_get(e.port(), k % 2 ? "/metrics" : "/bad");
    const std::uint64_t warm = in_use();
    for (int k = 0; k < 500; ++k) http_get(e.port(), k % 2 ? "/metrics" : "/bad");
    const std::uint64_t later = in_use();
    INFO("heap in use " << warm << " then " << later);
    CHECK(later < warm + 256 * 1024);
}

TEST_CASE("stop() closes the port, and bad addresses and taken ports are refused", "[endpoint]") {
    memlens::metrics_endpoint e = memlens::serve_metrics();
    const std::uint16_t port = e.port();
    {
        memlens::endpoint_options same;
        same.port = port;
        CHECK_THROWS_AS(memlens::metrics_endpoint(std::move(same)), std::runtime_error);
    }
    memlens::metrics_endpoint moved = std::move(e);
    CHECK(moved.port() == port);
    CHECK(e.port() == 0);
    moved.stop();
    moved.stop();
    CHECK(moved.port() == 0);
    CHECK_FALSE(moved.running());
    CHECK(http_connect(port) < 0);
    memlens::endpoint_options options;
    options.address = "localhost";
    CHECK_THROWS_AS(memlens::metrics_endpoint(std::move(options)), std::invalid_argument);
    memlens::endpoint_options v6;
    v6.address = "::1";
    try {
        memlens::metrics_endpoint six(std::move(v6));
        CHECK(six.port() != 0);
    } catch (const std::runtime_error& error) {
        WARN("no IPv6 loopback here: " << error.what());
    }
}

TEST_CASE("a child after fork() stops its copy without touching the parent's endpoint", "[endpoint]") {
    memlens::metrics_endpoint e = memlens::serve_metrics();
    const ::pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        e.stop();
        ::_exit(e.port() == 0 && !e.running() ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(http_starts(http_get(e.port(), "/metrics"), "HTTP/1.1 200 OK\r\n"));
}

TEST_CASE("a provider that throws gets a 500, and the endpoint serves on", "[endpoint]") {
    memlens::endpoint_options options;
    std::atomic<bool> fail{true};  // read on the endpoint's thread
    options.alerts = [&fail]() -> std::vector<memlens::alert_state> {
        if (fail.load()) throw std::runtime_error("the monitor is not ready");
        return {};
    };
    memlens::metrics_endpoint e(std::move(options));
    CHECK(http_starts(http_get(e.port(), "/metrics"), "HTTP/1.1 500 Internal Server Error\r\n"));
    CHECK(e.running());
    fail.store(false);
    CHECK(http_starts(http_get(e.port(), "/metrics"), "HTTP/1.1 200 OK\r\n"));
    CHECK(e.counts().rejected == 1);
    CHECK(e.counts().served == 1);
}
