// memlens/core/process.hpp: one memlens state per process, whichever objects hold a copy of the
// headers.
//
// memlens's process-wide variables are inline variables with default visibility
// (MEMLENS_DETAIL_SHARED). GCC gives them unique binding: the dynamic loader binds every copy's
// references to the first definition it enters in its table of unique symbols, across
// RTLD_LOCAL and -Bsymbolic objects, and keeps the object that holds it loaded. An executable's
// own references never pass through that table, so a shared object linked with -Bsymbolic,
// which looks in itself first, would enter its own definitions and keep a state apart from the
// program's. The program's copy therefore enters its definitions first, as it starts, by
// looking each up once; for that the executable must export them (CMake's memlens target links
// executables with -Wl,--export-dynamic-symbol=_ZN7memlens*).
#pragma once

#include <cstdint>
#include <cstring>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../detail/config.hpp"
#include "../detail/sys.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

struct dynamic_symbols {
    const ElfW(Sym)* symbols = nullptr;
    const char* names = nullptr;
    std::size_t count = 0;
};

// The loader rewrites the dynamic section's addresses in place on most targets, not on all.
inline std::uintptr_t dynamic_address(std::uintptr_t value, std::uintptr_t base) noexcept {
    return value < base ? value + base : value;
}

// How many symbols a GNU hash table covers: past the highest bucket's start, to the chain's end.
inline std::size_t gnu_hash_symbol_count(const std::uint32_t* table) noexcept {
    const std::uint32_t buckets = table[0];
    const std::uint32_t first = table[1];
    const std::uint32_t bloom_words = table[2];
    const auto* bucket = reinterpret_cast<const std::uint32_t*>(
        reinterpret_cast<const unsigned char*>(table + 4) + bloom_words * sizeof(ElfW(Addr)));
    const std::uint32_t* chain = bucket + buckets;
    std::uint32_t last = 0;
    for (std::uint32_t i = 0; i < buckets; ++i) {
        if (bucket[i] > last) last = bucket[i];
    }
    if (last < first) return first;
    while ((chain[last - first] & 1u) == 0) ++last;
    return last + 1;
}

inline int find_program_symbols(::dl_phdr_info* info, std::size_t, void* out) noexcept {
    auto& found = *static_cast<dynamic_symbols*>(out);
    const ElfW(Dyn)* dynamic = nullptr;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) {
            dynamic = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        }
    }
    if (!dynamic) return 1;
    const std::uintptr_t base = info->dlpi_addr;
    const std::uint32_t* gnu_hash = nullptr;
    const std::uint32_t* hash = nullptr;
    for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
        const std::uintptr_t at = dynamic_address(d->d_un.d_ptr, base);
        switch (d->d_tag) {
        case DT_SYMTAB: found.symbols = reinterpret_cast<const ElfW(Sym)*>(at); break;
        case DT_STRTAB: found.names = reinterpret_cast<const char*>(at); break;
        case DT_GNU_HASH: gnu_hash = reinterpret_cast<const std::uint32_t*>(at); break;
        case DT_HASH: hash = reinterpret_cast<const std::uint32_t*>(at); break;
        default: break;
        }
    }
    if (hash) {
        found.count = hash[1];
    } else if (gnu_hash) {
        found.count = gnu_hash_symbol_count(gnu_hash);
    }
    // The first object listed is the program; the others are not looked at.
    return 1;
}

// Enters the program's definitions of memlens's unique symbols in the loader's table, so that
// copies in shared objects loaded later bind to them. Runs as the program's copy is
// initialised, outside any hook: dlsym takes the loader's lock and may allocate.
inline bool claim_process_state() noexcept {
    dynamic_symbols program;
    ::dl_iterate_phdr(&find_program_symbols, &program);
    if (!program.symbols || !program.names) return false;
    for (std::size_t i = 0; i < program.count; ++i) {
        const ElfW(Sym)& s = program.symbols[i];
        if (ELF64_ST_BIND(s.st_info) != STB_GNU_UNIQUE || s.st_shndx == SHN_UNDEF) continue;
        const char* name = program.names + s.st_name;
        if (std::strstr(name, "7memlens") != nullptr) ::dlsym(RTLD_DEFAULT, name);
    }
    return true;
}

// Where the loader cannot join copies (Clang gives inline variables no unique binding, so
// copies in objects opened RTLD_LOCAL, or linked -Bsymbolic, each bind to their own), a state
// says so when it starts: each leaves a one-page memory file mapped under a name that carries
// its address, which /proc/self/maps shows to every copy. Only system calls: it runs inside a
// hook, at a state's first event.
constexpr const char state_mark[] = "memlens-state-";

inline std::size_t hex_text(std::uintptr_t value, char* out) noexcept {
    char digits[2 * sizeof value];
    std::size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value & 15u];
        value >>= 4;
    } while (value != 0);
    for (std::size_t i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    return n;
}

// Whether /proc/self/maps shows the mark of a state other than the one named `mine`.
inline bool other_state_marked(const char* mine) noexcept {
    const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char line[512];
    std::size_t used = 0;
    bool found = false;
    char chunk[4096];
    ssize_t got = 0;
    while (!found && (got = ::read(fd, chunk, sizeof chunk)) > 0) {
        for (ssize_t i = 0; i < got && !found; ++i) {
            if (chunk[i] != '\n') {
                if (used + 1 < sizeof line) line[used++] = chunk[i];
                continue;
            }
            line[used] = '\0';
            used = 0;
            const char* mark = std::strstr(line, state_mark);
            if (!mark) continue;
            const std::size_t length = std::strlen(mine);
            found = std::strncmp(mark, mine, length) != 0 ||
                    (mark[length] != ' ' && mark[length] != '\0');
        }
    }
    ::close(fd);
    return found;
}

// Leaves this state's mark and says so when another state left one.
MEMLENS_COLD inline void mark_process_state(const void* state) noexcept {
    char name[sizeof state_mark + 2 * sizeof(std::uintptr_t)];
    std::memcpy(name, state_mark, sizeof state_mark - 1);
    const std::size_t n = hex_text(reinterpret_cast<std::uintptr_t>(state), name + sizeof state_mark - 1);
    name[sizeof state_mark - 1 + n] = '\0';
    const long fd = ::syscall(SYS_memfd_create, name, 1u /* MFD_CLOEXEC */);
    if (fd < 0) return;
    const long page = ::sysconf(_SC_PAGESIZE);
    if (::ftruncate(static_cast<int>(fd), page) == 0) {
        ::mmap(nullptr, static_cast<std::size_t>(page), PROT_READ, MAP_SHARED, static_cast<int>(fd), 0);
    }
    ::close(static_cast<int>(fd));
    if (other_state_marked(name)) {
        report_error("another copy of memlens in this process keeps a memlens state of its own (a "
                     "shared object built with Clang and opened RTLD_LOCAL or linked with "
                     "-Bsymbolic, or one that hides memlens's symbols): what it counts is not in "
                     "these figures, nor the reverse");
    }
}

}  // namespace detail
MEMLENS_NAMESPACE_END
