// memlens/observe/symbols.hpp: turns captured return addresses into function names, file:line
// and module + offset, on demand (never on an allocation path), cached for the process. Linux/ELF.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cxxabi.h>
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/source_frames.hpp"
#include "../core/state.hpp"
#include "../detail/index.hpp"
#include "../detail/names.hpp"
#include "../detail/rank.hpp"
#include "../model/frames.hpp"

extern "C" char** environ;

MEMLENS_NAMESPACE_BEGIN

/// How much symbolize() resolves.
struct symbolize_options {
    /// Also ask an external symbolizer for file:line and the calls inlined at each address:
    /// $MEMLENS_SYMBOLIZER when set (empty turns it off), else llvm-symbolizer (or
    /// llvm-symbolizer-N) on PATH, else addr2line. Both read the module's DWARF.
    bool file_lines = true;
    /// How long one symbolizer child may run before it is killed and its frames get no file:line.
    unsigned timeout_ms = 10000;
};

/// Resolves return addresses (innermost first, as captured), each looked up at address - 1 so
/// that it names the call. Function names come from each module's own .symtab and .dynsym,
/// static and hidden functions included, compiler clones (".cold", ".isra") folded into their
/// function; file:line and inlined calls (frame_info::inlined) from one symbolizer child per
/// module per call, for addresses not seen before, with paths normalized. Results are cached
/// for the life of the process in memory that memlens does not count. Thread safe; never throws
/// for bad addresses (only std::bad_alloc); slow on first sight of a module or address, never
/// on an allocation path.
inline std::vector<frame_info> symbolize(const std::vector<std::uintptr_t>& return_addresses,
                                         const symbolize_options& options = {});

namespace detail {

// Symbolizer children started so far: lets tests see that cached calls spawn nothing.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uint64_t> symbolizer_runs{0};

struct elf_symbol {
    std::uintptr_t start = 0;  // st_value: relative to the load base, as lookups are
    std::uintptr_t size = 0;
    std::uint32_t name = 0;  // offset into symbol_table::names
};

struct symbol_table {
    std::vector<elf_symbol> symbols;  // sorted by start, one per start
    std::string names;                // NUL-terminated names back to back
    bool has_symtab = false;          // false once stripped: static functions have no names
    std::string build_id;             // hex, from the GNU build-id note; names the debug file

    // The name of the function that holds `pc`, or null.
    const char* find(std::uintptr_t pc) const noexcept {
        auto after = std::upper_bound(
            symbols.begin(), symbols.end(), pc,
            [](std::uintptr_t a, const elf_symbol& s) { return a < s.start; });
        if (after == symbols.begin()) return nullptr;
        const elf_symbol& s = *(after - 1);
        // A symbol without a size (hand-written assembly) reaches up to the next one.
        if (s.size != 0 && pc - s.start >= s.size) return nullptr;
        return names.c_str() + s.name;
    }
};

// Copies a T from `offset` in the file image, or fails when it does not fit: every offset and
// count in the file is checked, so a truncated or corrupt file is only a module without names.
template <class T>
bool read_at(const unsigned char* data, std::size_t size, std::uint64_t offset, T& out) noexcept {
    if (offset > size || size - offset < sizeof(T)) return false;
    std::memcpy(&out, data + offset, sizeof(T));
    return true;
}

inline bool fits(std::size_t size, std::uint64_t offset, std::uint64_t length) noexcept {
    return offset <= size && length <= size - offset;
}

// The GNU build-id among the notes of one SHT_NOTE section, as lowercase hex.
inline void read_build_id(const unsigned char* notes, std::size_t size, std::string& out) {
    constexpr auto padded = [](std::uint64_t n) { return (n + 3) & ~std::uint64_t{3}; };
    ElfW(Nhdr) note;
    for (std::uint64_t at = 0; read_at(notes, size, at, note);) {
        const std::uint64_t name_at = at + sizeof note;
        const std::uint64_t desc_at = name_at + padded(note.n_namesz);
        if (!fits(size, name_at, padded(note.n_namesz)) || !fits(size, desc_at, note.n_descsz)) {
            return;
        }
        if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
            std::memcmp(notes + name_at, "GNU", 4) == 0 && note.n_descsz != 0) {
            static constexpr char digits[] = "0123456789abcdef";
            out.clear();
            for (std::uint64_t k = 0; k < note.n_descsz; ++k) {
                out.push_back(digits[notes[desc_at + k] >> 4]);
                out.push_back(digits[notes[desc_at + k] & 15]);
            }
            return;
        }
        at = desc_at + padded(note.n_descsz);
    }
}

// Function symbols of both .symtab and .dynsym of an ELF image of this machine's class and
// byte order; empty for anything else.
inline symbol_table read_elf_symbols(const unsigned char* data, std::size_t size) {
    symbol_table table;
    ElfW(Ehdr) header;
    if (!read_at(data, size, 0, header) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
        return table;
    }
    constexpr unsigned char own_class = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    constexpr unsigned char own_order = ELFDATA2LSB;
#else
    constexpr unsigned char own_order = ELFDATA2MSB;
#endif
    if (header.e_ident[EI_CLASS] != own_class || header.e_ident[EI_DATA] != own_order ||
        header.e_shentsize != sizeof(ElfW(Shdr))) {
        return table;
    }
    std::uint64_t count = header.e_shnum;
    if (count == 0) {
        // Over 0xff00 sections: the count lives in the first section header.
        ElfW(Shdr) first;
        if (!read_at(data, size, header.e_shoff, first)) return table;
        count = first.sh_size;
    }
    if (!fits(size, header.e_shoff, 0) || count > (size - header.e_shoff) / sizeof(ElfW(Shdr))) {
        return table;
    }
    auto section = [&](std::uint64_t index, ElfW(Shdr)& out) {
        return index < count &&
               read_at(data, size, header.e_shoff + index * sizeof(ElfW(Shdr)), out);
    };

    struct candidate {
        std::uintptr_t start;
        std::uintptr_t size;
        const char* name;
        std::size_t length;
        unsigned rank;
    };
    std::vector<candidate> found;
    for (std::uint64_t i = 0; i < count; ++i) {
        ElfW(Shdr) symbols, strings;
        if (section(i, symbols) && symbols.sh_type == SHT_NOTE &&
            fits(size, symbols.sh_offset, symbols.sh_size)) {
            read_build_id(data + symbols.sh_offset, static_cast<std::size_t>(symbols.sh_size),
                          table.build_id);
        }
        if (!section(i, symbols) ||
            (symbols.sh_type != SHT_SYMTAB && symbols.sh_type != SHT_DYNSYM) ||
            symbols.sh_entsize != sizeof(ElfW(Sym)) ||
            !fits(size, symbols.sh_offset, symbols.sh_size) ||
            !section(symbols.sh_link, strings) || strings.sh_type != SHT_STRTAB ||
            !fits(size, strings.sh_offset, strings.sh_size)) {
            continue;
        }
        if (symbols.sh_type == SHT_SYMTAB) table.has_symtab = true;
        const char* text = reinterpret_cast<const char*>(data + strings.sh_offset);
        for (std::uint64_t at = 0; at + sizeof(ElfW(Sym)) <= symbols.sh_size;
             at += sizeof(ElfW(Sym))) {
            ElfW(Sym) sym;
            read_at(data, size, symbols.sh_offset + at, sym);
            const auto type = static_cast<unsigned>(ELF64_ST_TYPE(sym.st_info));
            if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
                sym.st_value == 0 || sym.st_name >= strings.sh_size) {
                continue;
            }
            const char* name = text + sym.st_name;
            const void* end = std::memchr(name, '\0', strings.sh_size - sym.st_name);
            if (!end || end == name) continue;
            // Versioned aliases in a .symtab ("__libc_start_main@GLIBC_2.2.5") read as the
            // plain name; mangled C++ names never hold an '@'.
            const auto length = static_cast<std::size_t>(static_cast<const char*>(end) - name);
            if (const void* version = std::memchr(name, '@', length)) {
                if (version != name) end = version;
            }
            // Of aliases at one address, the name a person wrote reads best: sized before
            // unsized, fewer leading underscores (getpid before __getpid), global before local.
            unsigned underscores = 0;
            while (underscores < 7 && name[underscores] == '_') ++underscores;
            const auto bind = static_cast<unsigned>(ELF64_ST_BIND(sym.st_info));
            const unsigned rank = (sym.st_size == 0 ? 64u : 0u) + underscores * 4u +
                                  (bind == STB_GLOBAL ? 0u : bind == STB_WEAK ? 1u : 2u);
            found.push_back({static_cast<std::uintptr_t>(sym.st_value),
                             static_cast<std::uintptr_t>(sym.st_size), name,
                             static_cast<std::size_t>(static_cast<const char*>(end) - name), rank});
        }
    }
    const std::vector<std::uint32_t> order =
        sorted_rows(found.size(), {found.data(), [](const void* rows, std::uint32_t a, std::uint32_t b) {
                        const candidate& x = static_cast<const candidate*>(rows)[a];
                        const candidate& y = static_cast<const candidate*>(rows)[b];
                        return x.start != y.start ? x.start < y.start : x.rank < y.rank;
                    }});
    table.symbols.reserve(found.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        const candidate& c = found[order[i]];
        if (i != 0 && c.start == found[order[i - 1]].start) continue;
        if (table.names.size() + c.length >= UINT32_MAX) break;
        table.symbols.push_back({c.start, c.size, static_cast<std::uint32_t>(table.names.size())});
        table.names.append(c.name, c.length);
        table.names.push_back('\0');
    }
    return table;
}

inline symbol_table read_elf_file(const char* path) {
    symbol_table table;
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return table;
    struct ::stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        const auto length = static_cast<std::size_t>(st.st_size);
        void* image = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
        if (image != MAP_FAILED) {
            table = read_elf_symbols(static_cast<const unsigned char*>(image), length);
            ::munmap(image, length);
        }
    }
    ::close(fd);
    return table;
}

// The readable name of a symbol, with a compiler's clone folded into its function.
inline std::string demangle(const char* name) {
    if (name[0] != '_' || name[1] != 'Z') return without_clone_suffix(name);
    int status = 0;
    char* readable = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    std::string out = status == 0 && readable ? readable : name;
    std::free(readable);
    return without_clone_suffix(std::move(out));
}

struct cached_frame {
    std::string function;
    std::string file;
    unsigned line = 0;
    std::vector<frame_info> inlined;  // function, file and line of each, innermost first
    bool lines_asked = false;  // a symbolizer ran for it, whatever it answered
};

// One loaded object. A module that is unloaded and loaded again at another base is another
// module: caches are keyed by path and load base.
struct symbol_module {
    std::string path;       // shown, and handed to the symbolizer
    std::string open_path;  // read for symbols: /proc/self/exe for the program itself
    std::uintptr_t base = 0;
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> segments;  // [start, end)
    bool has_file = false;  // false for the vdso, which exists only in memory
    bool symbols_read = false;
    symbol_table symbols;
    key_index frame_rows;  // by offset, into frames
    std::vector<cached_frame> frames;

    bool holds(std::uintptr_t pc) const noexcept {
        for (const auto& s : segments) {
            if (pc >= s.first && pc < s.second) return true;
        }
        return false;
    }

    // The frame at `offset`, read on first use; the reference lasts until the next new offset.
    cached_frame& frame_at(std::uintptr_t offset) {
        const std::uint32_t known = frame_rows.find(offset);
        if (known != key_index::none) return frames[known];
        if (!symbols_read) {
            symbols_read = true;
            if (has_file) symbols = read_elf_file(open_path.c_str());
            // A stripped module may have its .symtab in a detached debug file (Debian's *-dbg,
            // Fedora's debuginfo), found under the standard build-id path.
            if (!symbols.has_symtab && symbols.build_id.size() > 2) {
                const std::string& id = symbols.build_id;
                symbol_table debug = read_elf_file(("/usr/lib/debug/.build-id/" + id.substr(0, 2) +
                                                    "/" + id.substr(2) + ".debug").c_str());
                if (debug.symbols.size() > symbols.symbols.size()) symbols = std::move(debug);
            }
        }
        cached_frame f;
        if (const char* name = symbols.find(offset - 1)) f.function = demangle(name);
        frame_rows.insert(offset);
        frames.push_back(std::move(f));
        return frames.back();
    }
};

struct symbolizer_choice {
    std::string path_env;
    std::string override_env;
    bool has_override = false;
    bool chosen = false;
    std::string tool;  // empty when there is none
};

struct symbol_cache {
    std::mutex lock;
    std::vector<std::shared_ptr<symbol_module>> modules;
    // The loader's counts of objects loaded and unloaded when the list was read: a change
    // means a dlopen or dlclose since, even one that reused the same addresses.
    unsigned long long adds = 0;
    unsigned long long subs = 0;
    bool counts_known = false;
    bool scanned = false;
    symbolizer_choice symbolizer;
};

inline void symbols_fork_prepare() noexcept;
inline void symbols_fork_parent() noexcept;

// Never destroyed: symbolize may run from static destructors, and the memory is memlens's own.
inline symbol_cache& symbols_state() {
    static symbol_cache* const cache = [] {
        auto* c = new symbol_cache;
        // A fork while another thread holds the lock must not leave it held in the child.
        ::pthread_atfork(&symbols_fork_prepare, &symbols_fork_parent, &symbols_fork_parent);
        return c;
    }();
    return *cache;
}

inline void symbols_fork_prepare() noexcept { symbols_state().lock.lock(); }
inline void symbols_fork_parent() noexcept { symbols_state().lock.unlock(); }

struct loader_counts {
    unsigned long long adds = 0;
    unsigned long long subs = 0;
    bool known = false;
};

inline bool has_counts(std::size_t size) noexcept {
    return size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(dl_phdr_info::dlpi_subs);
}

inline loader_counts read_loader_counts() noexcept {
    loader_counts out;
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t size, void* data) {
            auto* counts = static_cast<loader_counts*>(data);
            if (has_counts(size)) *counts = {info->dlpi_adds, info->dlpi_subs, true};
            return 1;
        },
        &out);
    return out;
}

inline std::string program_path() {
    char buffer[4096];
    const ::ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
    if (n > 0) return std::string(buffer, static_cast<std::size_t>(n));
    const auto* name = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
    return name ? name : "";
}

struct module_scan {
    const std::vector<std::shared_ptr<symbol_module>>* old = nullptr;
    std::vector<std::shared_ptr<symbol_module>> found;
    loader_counts counts;
    bool out_of_memory = false;
};

inline void add_module(module_scan& scan, const dl_phdr_info& info, std::size_t size) {
    if (scan.found.empty() && has_counts(size)) {
        scan.counts = {info.dlpi_adds, info.dlpi_subs, true};
    }
    // The program itself comes first, without a name.
    const bool program = scan.found.empty() && (!info.dlpi_name || !info.dlpi_name[0]);
    std::string path = program ? program_path() : info.dlpi_name ? info.dlpi_name : "";
    for (const auto& m : *scan.old) {
        if (m->base == info.dlpi_addr && m->path == path) {
            scan.found.push_back(m);
            return;
        }
    }
    auto m = std::make_shared<symbol_module>();
    m->base = info.dlpi_addr;
    m->has_file = program || path.find('/') != std::string::npos;
    m->open_path = program ? "/proc/self/exe" : path;
    m->path = std::move(path);
    for (ElfW(Half) i = 0; i < info.dlpi_phnum; ++i) {
        const ElfW(Phdr)& p = info.dlpi_phdr[i];
        if (p.p_type != PT_LOAD) continue;
        const std::uintptr_t start = info.dlpi_addr + p.p_vaddr;
        m->segments.emplace_back(start, start + p.p_memsz);
    }
    scan.found.push_back(std::move(m));
}

inline void rescan_modules(symbol_cache& cache) {
    module_scan scan;
    scan.old = &cache.modules;
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t size, void* data) {
            auto* s = static_cast<module_scan*>(data);
            // No exception may unwind through the loader while it holds its lock.
            try {
                add_module(*s, *info, size);
            } catch (...) {
                s->out_of_memory = true;
                return 1;
            }
            return 0;
        },
        &scan);
    if (scan.out_of_memory) throw std::bad_alloc();
    cache.modules = std::move(scan.found);
    cache.adds = scan.counts.adds;
    cache.subs = scan.counts.subs;
    cache.counts_known = scan.counts.known;
    cache.scanned = true;
}

inline std::shared_ptr<symbol_module> find_module(const symbol_cache& cache,
                                                  std::uintptr_t pc) noexcept {
    for (const auto& m : cache.modules) {
        if (m->holds(pc)) return m;
    }
    return nullptr;
}

inline bool executable(const std::string& path) {
    struct ::stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
}

// llvm-symbolizer, else the newest llvm-symbolizer-N, anywhere on PATH; else addr2line.
inline std::string search_path_for_symbolizer(const std::string& path_env) {
    std::vector<std::string> dirs;
    for (std::size_t from = 0; from <= path_env.size();) {
        std::size_t colon = path_env.find(':', from);
        if (colon == std::string::npos) colon = path_env.size();
        dirs.push_back(colon == from ? "." : path_env.substr(from, colon - from));
        from = colon + 1;
    }
    std::string versioned;
    unsigned long newest = 0;
    for (const std::string& dir : dirs) {
        if (executable(dir + "/llvm-symbolizer")) return dir + "/llvm-symbolizer";
        DIR* listing = ::opendir(dir.c_str());
        if (!listing) continue;
        static constexpr char prefix[] = "llvm-symbolizer-";
        while (const dirent* entry = ::readdir(listing)) {
            const char* name = entry->d_name;
            if (std::strncmp(name, prefix, sizeof prefix - 1) != 0) continue;
            char* end = nullptr;
            const unsigned long version = std::strtoul(name + sizeof prefix - 1, &end, 10);
            if (*end != '\0' || end == name + sizeof prefix - 1 || version <= newest) continue;
            if (executable(dir + "/" + name)) {
                versioned = dir + "/" + name;
                newest = version;
            }
        }
        ::closedir(listing);
    }
    if (!versioned.empty()) return versioned;
    for (const std::string& dir : dirs) {
        if (executable(dir + "/addr2line")) return dir + "/addr2line";
    }
    return {};
}

// The symbolizer to run, looked for again only when PATH or $MEMLENS_SYMBOLIZER change.
inline const std::string& choose_symbolizer(symbolizer_choice& choice) {
    const char* path = std::getenv("PATH");
    const char* forced = std::getenv("MEMLENS_SYMBOLIZER");
    const std::string path_env = path ? path : "";
    if (choice.chosen && choice.path_env == path_env &&
        choice.has_override == (forced != nullptr) && (!forced || choice.override_env == forced)) {
        return choice.tool;
    }
    choice.path_env = path_env;
    choice.has_override = forced != nullptr;
    choice.override_env = forced ? forced : "";
    choice.tool = forced ? choice.override_env : search_path_for_symbolizer(path_env);
    choice.chosen = true;
    return choice.tool;
}

inline bool same_file(const char* a, const char* b) noexcept {
    struct ::stat sa{};
    struct ::stat sb{};
    return ::stat(a, &sa) == 0 && ::stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// The environment `env` less every MEMLENS_* variable, and less `own_object` (the file that holds
// this code) in LD_PRELOAD: a symbolizer run under a preloaded memlens would write a report at
// its own exit, and start a symbolizer for that report, without end.
inline std::vector<std::string> child_environment(char** env, const char* own_object) {
    std::vector<std::string> out;
    for (char** e = env; e && *e; ++e) {
        const std::string_view entry(*e);
        if (entry.substr(0, 8) == "MEMLENS_") continue;
        if (entry.substr(0, 11) != "LD_PRELOAD=") {
            out.emplace_back(entry);
            continue;
        }
        std::string kept = "LD_PRELOAD=";
        bool any = false;
        std::size_t at = 11;
        while (at <= entry.size()) {
            std::size_t end = entry.find_first_of(": ", at);
            if (end == std::string_view::npos) end = entry.size();
            const std::string path(entry.substr(at, end - at));
            if (!path.empty() && !(own_object && same_file(path.c_str(), own_object))) {
                if (any) kept += ':';
                kept += path;
                any = true;
            }
            at = end + 1;
        }
        if (any) out.push_back(kept);
    }
    return out;
}

// Runs `args` (args[0] a path) with stdin and stderr on /dev/null and returns what it wrote
// to stdout, in the program's environment less memlens's own (child_environment). A child still running after `timeout_ms` is killed; its output so far is kept.
// posix_spawn, not popen or system: the host may be multithreaded and may have its own
// SIGCHLD handling.
inline std::string run_child(const std::vector<std::string>& args, unsigned timeout_ms) {
    std::string out;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return out;
    ::posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    ::posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    ::posix_spawnattr_t attributes;
    ::posix_spawnattr_init(&attributes);
    ::sigset_t none, defaults;
    ::sigemptyset(&none);
    ::sigemptyset(&defaults);
    ::sigaddset(&defaults, SIGPIPE);
    ::posix_spawnattr_setsigmask(&attributes, &none);
    ::posix_spawnattr_setsigdefault(&attributes, &defaults);
    ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::Dl_info self{};
    const bool placed = ::dladdr(reinterpret_cast<const void*>(&symbolizer_runs), &self) != 0;
    const std::vector<std::string> environment =
        child_environment(environ, placed ? self.dli_fname : nullptr);
    std::vector<char*> envp;
    for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    ::pid_t pid = 0;
    const int spawned = ::posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), envp.data());
    ::posix_spawnattr_destroy(&attributes);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (spawned != 0) {
        ::close(fds[0]);
        return out;
    }
    symbolizer_runs.fetch_add(1, relaxed);
    const std::int64_t deadline =
        monotonic_ns() + static_cast<std::int64_t>(timeout_ms) * 1'000'000;
    bool done = false;
    for (std::int64_t left; !done && (left = deadline - monotonic_ns()) > 0;) {
        ::pollfd p{fds[0], POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left / 1'000'000 + 1));
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        char buffer[4096];
        const ::ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n > 0) {
            out.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            done = true;
        }
    }
    ::close(fds[0]);
    // Closing stdout comes just before exiting; past the deadline the child is killed.
    for (;;) {
        int status = 0;
        const ::pid_t reaped = ::waitpid(pid, &status, WNOHANG);
        if (reaped == pid || (reaped < 0 && errno != EINTR)) break;
        if (reaped == 0 && monotonic_ns() >= deadline) {
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        const ::timespec pause{0, 1'000'000};
        ::nanosleep(&pause, nullptr);
    }
    return out;
}

// One place in the source: a function and the file:line in it.
struct source_place {
    std::string function;
    std::string file;
    unsigned line = 0;
};

// What the symbolizer said about one address: the calls at it, innermost (inlined) first, the
// function whose code it is last.
struct line_answer {
    std::uintptr_t pc = 0;
    std::vector<source_place> calls;
};

// Reads "0x<pc>\n" then "<function>\n<file>:<line>[ (discriminator n)]\n" per call, innermost
// first, as both addr2line -a -f -i and llvm-symbolizer --output-style=GNU -a -f -i print. "??"
// stands for what it does not know.
inline std::vector<line_answer> parse_line_answers(const std::string& text) {
    std::vector<line_answer> out;
    bool expect_location = false;
    for (std::size_t from = 0; from < text.size();) {
        std::size_t end = text.find('\n', from);
        if (end == std::string::npos) end = text.size();
        std::string row = text.substr(from, end - from);
        from = end + 1;
        if (!expect_location && row.compare(0, 2, "0x") == 0) {
            const unsigned long long pc = std::strtoull(row.c_str() + 2, nullptr, 16);
            out.push_back({static_cast<std::uintptr_t>(pc), {}});
            continue;
        }
        if (out.empty()) continue;
        std::vector<source_place>& calls = out.back().calls;
        if (!expect_location) {
            calls.push_back({row == "??" ? std::string() : without_clone_suffix(std::move(row)), {}, 0});
            expect_location = true;
            continue;
        }
        expect_location = false;
        const std::size_t note = row.find(" (");
        if (note != std::string::npos) row.resize(note);
        const std::size_t colon = row.rfind(':');
        if (colon == std::string::npos) continue;
        const std::string file = row.substr(0, colon);
        if (file.empty() || file == "??") continue;
        calls.back().file = normalized_path(file);
        calls.back().line = static_cast<unsigned>(std::strtoul(row.c_str() + colon + 1, nullptr, 10));
    }
    return out;
}

inline std::vector<line_answer> ask_symbolizer(const std::string& tool, const std::string& object,
                                               const std::vector<std::uintptr_t>& pcs,
                                               unsigned timeout_ms) {
    const std::size_t slash = tool.rfind('/');
    const bool llvm = tool.find("llvm-symbolizer", slash == std::string::npos ? 0 : slash) !=
                      std::string::npos;
    std::vector<std::string> args{tool};
    if (llvm) {
        args.insert(args.end(), {"--obj=" + object, "--output-style=GNU", "--functions=linkage",
                                 "--inlines", "--demangle", "-a"});
    } else {
        args.insert(args.end(), {"-e", object, "-a", "-f", "-i", "-C"});
    }
    for (std::uintptr_t pc : pcs) {
        char hex[2 + 2 * sizeof pc + 1];
        std::snprintf(hex, sizeof hex, "0x%" PRIxPTR, pc);
        args.emplace_back(hex);
    }
    std::vector<line_answer> answers = parse_line_answers(run_child(args, timeout_ms));
    if (!llvm) {
        // addr2line names the innermost inlined call after the function it was inlined into when
        // the callee has no linkage name (internal linkage): that name is not the callee's.
        for (line_answer& a : answers) {
            if (a.calls.size() < 2) continue;
            const std::string inner = qualified_name(a.calls.front().function);
            const std::string outer = qualified_name(a.calls.back().function);
            if (!outer.empty() && inner.size() >= outer.size() &&
                inner.compare(inner.size() - outer.size(), outer.size(), outer) == 0) {
                a.calls.front().function.clear();
            }
        }
    }
    return answers;
}

}  // namespace detail

inline std::vector<frame_info> symbolize(const std::vector<std::uintptr_t>& return_addresses,
                                         const symbolize_options& options) {
    detail::guard quiet;
    detail::symbol_cache& cache = detail::symbols_state();
    // Modules stay alive through this call even if another call rescans meanwhile.
    std::vector<std::shared_ptr<detail::symbol_module>> owners(return_addresses.size());
    struct request {
        std::shared_ptr<detail::symbol_module> module;
        std::vector<std::uintptr_t> pcs;
    };
    std::vector<request> requests;
    std::string tool;
    {
        std::lock_guard<std::mutex> hold(cache.lock);
        if (!cache.scanned) {
            detail::rescan_modules(cache);
        } else if (cache.counts_known) {
            const detail::loader_counts now = detail::read_loader_counts();
            if (!now.known || now.adds != cache.adds || now.subs != cache.subs) {
                detail::rescan_modules(cache);
            }
        }
        bool rescanned = false;
        for (std::size_t i = 0; i < return_addresses.size(); ++i) {
            if (detail::is_source_frame(return_addresses[i])) continue;
            // The call is the instruction before the return address.
            const std::uintptr_t pc = return_addresses[i] - 1;
            std::shared_ptr<detail::symbol_module> m = detail::find_module(cache, pc);
            // Without the loader's counts, an address outside every module may be in one
            // loaded since the last look.
            if (!m && !cache.counts_known && !rescanned) {
                detail::rescan_modules(cache);
                rescanned = true;
                m = detail::find_module(cache, pc);
            }
            if (!m) continue;
            owners[i] = m;
            const std::uintptr_t offset = return_addresses[i] - m->base;
            if (!options.file_lines || !m->has_file || m->frame_at(offset).lines_asked) continue;
            auto r = std::find_if(requests.begin(), requests.end(),
                                  [&m](const request& q) { return q.module == m; });
            if (r == requests.end()) r = requests.insert(requests.end(), request{m, {}});
            r->pcs.push_back(offset - 1);
        }
        if (!requests.empty()) tool = detail::choose_symbolizer(cache.symbolizer);
    }

    // The children run unlocked, so that other threads' cached lookups do not wait for them.
    std::vector<std::vector<detail::line_answer>> answers(requests.size());
    if (!tool.empty()) {
        // Keeps each command line far below ARG_MAX.
        constexpr std::size_t batch = 4096;
        for (std::size_t k = 0; k < requests.size(); ++k) {
            std::vector<std::uintptr_t>& pcs = requests[k].pcs;
            std::sort(pcs.begin(), pcs.end());
            pcs.erase(std::unique(pcs.begin(), pcs.end()), pcs.end());
            for (std::size_t from = 0; from < pcs.size(); from += batch) {
                const std::vector<std::uintptr_t> part(
                    pcs.begin() + static_cast<std::ptrdiff_t>(from),
                    pcs.begin() + static_cast<std::ptrdiff_t>(std::min(pcs.size(), from + batch)));
                auto got = detail::ask_symbolizer(tool, requests[k].module->path, part,
                                                  options.timeout_ms);
                answers[k].insert(answers[k].end(), std::make_move_iterator(got.begin()),
                                  std::make_move_iterator(got.end()));
            }
        }
    }

    std::vector<frame_info> out(return_addresses.size());
    std::lock_guard<std::mutex> hold(cache.lock);
    if (!tool.empty()) {
        for (std::size_t k = 0; k < requests.size(); ++k) {
            detail::symbol_module& m = *requests[k].module;
            for (std::uintptr_t pc : requests[k].pcs) m.frame_at(pc + 1).lines_asked = true;
            for (detail::line_answer& a : answers[k]) {
                const std::uint32_t row = m.frame_rows.find(a.pc + 1);
                if (row == detail::key_index::none || a.calls.empty()) continue;
                detail::cached_frame& c = m.frames[row];
                // The last call is the function whose code this is: the symbol table names it,
                // unless the module has none.
                detail::source_place& own = a.calls.back();
                if (c.function.empty()) c.function = std::move(own.function);
                c.file = std::move(own.file);
                c.line = own.line;
                a.calls.pop_back();
                for (detail::source_place& call : a.calls) {
                    frame_info inlined;
                    inlined.function = std::move(call.function);
                    inlined.file = std::move(call.file);
                    inlined.line = call.line;
                    inlined.inline_call = true;
                    c.inlined.push_back(std::move(inlined));
                }
            }
        }
    }
    for (std::size_t i = 0; i < return_addresses.size(); ++i) {
        frame_info& f = out[i];
        f.address = return_addresses[i];
        if (detail::is_source_frame(f.address)) {
            detail::source_frame named{};
            auto name = detail::source_frame_namer.load(std::memory_order_acquire);
            if (name && name(f.address, named)) {
                f.function = named.function;
                f.file = named.file;
                f.line = named.line;
                f.module = named.module;
            }
            continue;
        }
        if (!owners[i]) continue;
        detail::symbol_module& m = *owners[i];
        f.module = m.path;
        f.offset = f.address - m.base;
        const detail::cached_frame& c = m.frame_at(f.offset);
        f.function = c.function;
        f.file = c.file;
        f.line = c.line;
        f.inlined = c.inlined;
        for (frame_info& call : f.inlined) {
            call.address = f.address;
            call.module = f.module;
            call.offset = f.offset;
        }
    }
    return out;
}

MEMLENS_NAMESPACE_END
