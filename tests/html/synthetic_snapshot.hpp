// tests/html/synthetic_snapshot.hpp: a large snapshot built by hand, with its symbols filled in,
// for the HTML report's size tests (make_reports) and its benchmark (bench/html_bench.cpp).
#pragma once

#include <memlens/view/snapshot.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace memlens_test {

// `sites` distinct stacks, ten frames deep, that share their outer frames as a real program's
// do (16 subsystems, 64 modules each, ...), each with its own innermost allocating function;
// `allocations` live blocks spread over them. Deterministic.
inline memlens::snapshot synthetic_snapshot(std::size_t sites, std::size_t allocations) {
    memlens::snapshot s;
    s.domain_names = {"heap", "index", "cache"};
    std::uintptr_t next_address = 0x400000;
    auto function = [&](const std::string& name, unsigned line) {
        const std::uintptr_t address = next_address;
        next_address += 0x40;
        memlens::frame_info f;
        f.address = address;
        f.function = "synthetic::" + name + "(int)";
        f.file = "src/synthetic/" + name.substr(0, name.find('_')) + ".cpp";
        f.line = line;
        f.module = "/opt/synthetic/bin/server";
        f.offset = address - 0x400000;
        s.symbols.emplace(address, f);
        return address;
    };
    const std::uintptr_t main_frame = function("main", 12);
    const std::uintptr_t run_frame = function("run_workers", 40);
    std::vector<std::uintptr_t> subsystem, module, handler, step, helper;
    for (int i = 0; i < 16; ++i) subsystem.push_back(function("subsystem_" + std::to_string(i), 100 + static_cast<unsigned>(i)));
    for (int i = 0; i < 64; ++i) module.push_back(function("module_" + std::to_string(i), 200 + static_cast<unsigned>(i)));
    for (int i = 0; i < 97; ++i) handler.push_back(function("handler_" + std::to_string(i), 300 + static_cast<unsigned>(i)));
    for (int i = 0; i < 31; ++i) step.push_back(function("step_" + std::to_string(i), 400 + static_cast<unsigned>(i)));
    for (int i = 0; i < 13; ++i) helper.push_back(function("helper_" + std::to_string(i), 500 + static_cast<unsigned>(i)));
    const std::uintptr_t vector_grow = function("grow_buffer", 600);

    for (std::size_t k = 0; k < sites; ++k) {
        const std::uint32_t id = static_cast<std::uint32_t>(k + 1);
        // Innermost first, as captured.
        s.stacks[id] = {function("leaf_" + std::to_string(k), 1000 + static_cast<unsigned>(k % 5000)),
                        vector_grow,
                        helper[k % 13],
                        step[(k / 7) % 31],
                        handler[(k / 16) % 97],
                        module[(k / 3) % 64],
                        subsystem[k % 16],
                        run_frame,
                        main_frame};
        memlens::site_record r;
        r.stack = id;
        r.allocs = 10 + k % 1000;
        r.bytes = r.allocs * (16 + k % 64);
        r.temporaries = k % 3 == 0 ? r.allocs / 2 : 0;
        s.sites.push_back(r);
    }
    std::uint64_t live = 0;
    for (std::size_t i = 0; i < allocations; ++i) {
        memlens::live_allocation a;
        a.address = 0x10000000 + i * 64;
        // Every site holds a block; the rest favour a few sites, as real profiles do.
        const std::size_t k = (i * i + 7 * i) % sites;
        a.stack = static_cast<std::uint32_t>((i < sites ? i : (k * k) % sites) + 1);
        a.size = 8 + (i * 37) % 500;
        a.domain = static_cast<std::uint32_t>(i % 3);
        a.thread = 1;
        a.sequence = i + 1;
        live += a.size;
        s.allocations.push_back(a);
    }
    s.totals = {live, live * 2, live * 5, allocations * 4, allocations * 3};
    for (std::size_t d = 0; d < s.domain_names.size(); ++d) {
        s.domains.push_back({s.domain_names[d], {live / 3, live / 2, live * (d + 1), allocations * (d + 1), allocations * d}});
    }
    for (int i = 0; i < 12; ++i) {
        memlens::named_scope_stats n;
        n.name = "phase_" + std::to_string(i);
        n.file = "src/synthetic/phases.cpp";
        n.line = 10 + static_cast<unsigned>(i);
        n.calls = 1 + static_cast<std::uint64_t>(i);
        n.allocated = (static_cast<std::uint64_t>(i) + 1) << 20;
        n.allocs = 1000 * (static_cast<std::uint64_t>(i) + 1);
        n.max_peak = n.allocated / 2;
        n.net = static_cast<std::int64_t>(n.allocated / 16);
        s.scopes.push_back(n);
    }
    for (int i = 0; i < 8; ++i) {
        s.types.push_back({"synthetic::record_" + std::to_string(i), 48, 1000u * static_cast<unsigned>(i + 1),
                           48000u * static_cast<unsigned>(i + 1), 2000u * static_cast<unsigned>(i + 1),
                           5000u * static_cast<unsigned>(i + 1)});
    }
    for (int i = 0; i <= 1000; ++i) {
        const std::uint64_t current = live / 1000 * static_cast<std::uint64_t>(i % 250 + i / 2);
        const std::uint64_t peak = s.timeline.empty() ? current : std::max(s.timeline.back().peak, current);
        s.timeline.push_back({i * 0.01, current, peak, i % 100 == 0 ? "round " + std::to_string(i / 100) : "",
                              current + live / 8});
    }
    s.pools.push_back({"python.arenas", {live / 4, live / 2, live, 40, 30}});
    for (std::uint32_t g = 0; g < 3; ++g) {
        s.collector.push_back({g, 1000u >> (3 * g), 20000u >> g, g, 700 >> g, 0.5 / (g + 1), 0.01 * (g + 1)});
    }
    s.run.mode = "sites";
    s.run.build = "synthetic";
    s.run.command_line = "synthetic snapshot";
    return s;
}

}  // namespace memlens_test
