// memlens/core/unwind.hpp: the hybrid stack walk: frame records where code keeps them, the
// module's call-frame information (.eh_frame_hdr, .eh_frame) where it does not, each return
// address's rule parsed once and then served from a lock-free cache.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <dlfcn.h>
#include <link.h>
#include <sys/auxv.h>

#include "../detail/config.hpp"
#include "state.hpp"

// _dl_find_object (glibc 2.35) finds a module and its unwind table without the loader's lock;
// without it the hybrid walk follows frame records only.
#if (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)) && \
    (defined(__x86_64__) || defined(__aarch64__))
#define MEMLENS_DETAIL_CFI_WALK() 1
#else
#define MEMLENS_DETAIL_CFI_WALK() 0
#endif

MEMLENS_NAMESPACE_BEGIN namespace detail {

MEMLENS_ALWAYS_INLINE std::uintptr_t plain_code_address(std::uintptr_t address) noexcept {
#if defined(__aarch64__)
    // With pointer authentication (-mbranch-protection=pac-ret) a saved return address carries
    // a signature in its top bits; XPACLRI strips it, and is a no-op on cores without it.
    std::uintptr_t plain;
    asm("mov x30, %1\n\thint #7\n\tmov %0, x30" : "=r"(plain) : "r"(address) : "x30");
    return plain;
#else
    return address;
#endif
}

// ---- rules ---------------------------------------------------------------------------------

// How to find a frame's caller, packed in one word so that a cache slot is two words:
//   bits 0-1   kind
//   bit  2     the canonical frame address (CFA) is the frame pointer plus the offset, else the
//              stack pointer plus it
//   bit  3     the caller's frame pointer is saved at CFA + fp offset
//   bit  4     the caller's frame pointer is undefined
//   bit  5     all of the above is a frame record at the frame pointer: {caller's frame
//              pointer, return address} at fp, CFA = fp + the offset
//   bits 6-21  return-address offset from the CFA, signed
//   bits 22-37 frame-pointer offset from the CFA, signed
//   bits 38-63 CFA offset, unsigned
// 0 is never a rule, so that an empty slot matches nothing.
enum : std::uint64_t {
    rule_stop = 1,          // cannot be unwound soundly, or the outermost frame: the walk ends
    rule_frame_record = 2,  // no call-frame information: follow the frame record
    rule_cfa = 3,
    rule_kind_mask = 3,
    rule_cfa_on_fp = 1u << 2,
    rule_fp_saved = 1u << 3,
    rule_fp_undefined = 1u << 4,
    rule_record_at_fp = 1u << 5,
};

constexpr unsigned rule_ra_shift = 6;
constexpr unsigned rule_fp_shift = 22;
constexpr unsigned rule_cfa_shift = 38;
constexpr std::int64_t rule_cfa_limit = std::int64_t{1} << 26;

MEMLENS_ALWAYS_INLINE std::int64_t rule_ra_offset(std::uint64_t rule) noexcept {
    return static_cast<std::int16_t>(static_cast<std::uint16_t>(rule >> rule_ra_shift));
}
MEMLENS_ALWAYS_INLINE std::int64_t rule_fp_offset(std::uint64_t rule) noexcept {
    return static_cast<std::int16_t>(static_cast<std::uint16_t>(rule >> rule_fp_shift));
}
MEMLENS_ALWAYS_INLINE std::uint64_t rule_cfa_offset(std::uint64_t rule) noexcept {
    return rule >> rule_cfa_shift;
}

// DWARF register numbers of the stack pointer and frame pointer.
#if defined(__aarch64__)
constexpr std::uint64_t dwarf_sp = 31;
constexpr std::uint64_t dwarf_fp = 29;
#else
constexpr std::uint64_t dwarf_sp = 7;
constexpr std::uint64_t dwarf_fp = 6;
#endif

// ---- reading call-frame information ---------------------------------------------------------

// Reads within [p, end) only, and turns every overrun into a failure: a table the toolchain
// wrote wrongly, or a module address that was not one, ends the parse instead of the process.
struct cfi_reader {
    const std::uint8_t* p;
    const std::uint8_t* end;
    bool ok;

    bool has(std::size_t n) const noexcept {
        return ok && static_cast<std::size_t>(end - p) >= n;
    }

    template <class T>
    T fixed() noexcept {
        if (!has(sizeof(T))) {
            ok = false;
            return 0;
        }
        T value;
        std::memcpy(&value, p, sizeof value);
        p += sizeof value;
        return value;
    }

    std::uint8_t u8() noexcept { return fixed<std::uint8_t>(); }

    std::uint64_t uleb() noexcept {
        std::uint64_t value = 0;
        for (unsigned shift = 0;; shift += 7) {
            const std::uint8_t byte = u8();
            if (!ok) return 0;
            if (shift < 64) value |= std::uint64_t{byte & 0x7fu} << shift;
            if ((byte & 0x80) == 0) return value;
        }
    }

    std::int64_t sleb() noexcept {
        std::uint64_t value = 0;
        unsigned shift = 0;
        std::uint8_t byte = 0;
        do {
            byte = u8();
            if (!ok) return 0;
            if (shift < 64) value |= std::uint64_t{byte & 0x7fu} << shift;
            shift += 7;
        } while (byte & 0x80);
        if (shift < 64 && (byte & 0x40)) value |= ~std::uint64_t{0} << shift;
        return static_cast<std::int64_t>(value);
    }

    void skip(std::uint64_t n) noexcept {
        if (!has(static_cast<std::size_t>(n)) || n > SIZE_MAX) {
            ok = false;
            return;
        }
        p += n;
    }

    // A DW_EH_PE-encoded value: the low nibble says how it is stored, the high one what it is
    // relative to. Only the forms GCC, Clang and the linkers write for code addresses are read;
    // indirect ones would need a read through an address the table names, so they fail.
    std::uintptr_t pointer(std::uint8_t encoding, std::uintptr_t data_base) noexcept {
        const auto at = reinterpret_cast<std::uintptr_t>(p);
        std::uint64_t value = 0;
        switch (encoding & 0x0f) {
        case 0x00: value = fixed<std::uint64_t>(); break;
        case 0x01: value = uleb(); break;
        case 0x02: value = fixed<std::uint16_t>(); break;
        case 0x03: value = fixed<std::uint32_t>(); break;
        case 0x04: value = fixed<std::uint64_t>(); break;
        case 0x09: value = static_cast<std::uint64_t>(sleb()); break;
        case 0x0a: value = static_cast<std::uint64_t>(std::int64_t{fixed<std::int16_t>()}); break;
        case 0x0b: value = static_cast<std::uint64_t>(std::int64_t{fixed<std::int32_t>()}); break;
        case 0x0c: value = static_cast<std::uint64_t>(fixed<std::int64_t>()); break;
        default: ok = false; return 0;
        }
        switch (encoding & 0xf0) {
        case 0x00: break;
        case 0x10: value += at; break;
        case 0x30: value += data_base; break;
        default: ok = false; return 0;
        }
        return static_cast<std::uintptr_t>(value);
    }
};

// A record of .eh_frame: its body after the length, and where it ends.
inline bool cfi_record(std::uintptr_t at, std::uintptr_t limit, cfi_reader& body) noexcept {
    if (at >= limit) return false;
    body = {reinterpret_cast<const std::uint8_t*>(at), reinterpret_cast<const std::uint8_t*>(limit), true};
    std::uint64_t length = body.fixed<std::uint32_t>();
    if (length == 0xffffffffu) length = body.fixed<std::uint64_t>();
    if (!body.ok || length == 0 || !body.has(static_cast<std::size_t>(length))) return false;
    body.end = body.p + length;
    return true;
}

// The rules the walk tracks, as the CFA program leaves them at one address.
struct cfi_register_rule {
    enum : std::uint8_t { unchanged, undefined, at_offset } kind;
    std::int64_t offset;
};

struct cfi_row {
    std::uint64_t cfa_register;
    std::int64_t cfa_offset;
    cfi_register_rule ra;
    cfi_register_rule fp;
};

struct cfi_program {
    std::uint64_t code_align;
    std::int64_t data_align;
    std::uint64_t ra_column;
    std::uint8_t fde_encoding;
};

enum class cfi_result : std::uint8_t { reached, unsupported };

// Runs the CFA instructions in `r` until the row for `target` is complete (or, for a CIE,
// to the end). Only the operations of the common rules are followed; a rule the walk cannot
// apply (an expression, a register rule, a value rule) is unsupported when it concerns the CFA,
// the return address or the frame pointer, and ignored for any other register, which the walk
// never restores.
inline cfi_result run_cfa_program(cfi_reader r, const cfi_program& prog, std::uintptr_t location,
                                  std::uintptr_t target, const cfi_row& initial,
                                  cfi_row& row) noexcept {
    constexpr int max_remembered = 8;
    cfi_row remembered[max_remembered];
    int depth = 0;
    const auto tracked = [&](std::uint64_t reg) { return reg == prog.ra_column || reg == dwarf_fp; };
    const auto set_offset = [&](std::uint64_t reg, std::int64_t offset) {
        if (reg == prog.ra_column) row.ra = {cfi_register_rule::at_offset, offset};
        if (reg == dwarf_fp) row.fp = {cfi_register_rule::at_offset, offset};
    };
    const auto set_kind = [&](std::uint64_t reg, decltype(cfi_register_rule::kind) kind) {
        if (reg == prog.ra_column) row.ra = {kind, 0};
        if (reg == dwarf_fp) row.fp = {kind, 0};
    };
    const auto restore = [&](std::uint64_t reg) {
        if (reg == prog.ra_column) row.ra = initial.ra;
        if (reg == dwarf_fp) row.fp = initial.fp;
    };
    const auto advance = [&](std::uint64_t delta) {
        location += static_cast<std::uintptr_t>(delta * prog.code_align);
        return location <= target;
    };
    while (r.ok && r.p < r.end) {
        const std::uint8_t op = r.u8();
        switch (op >> 6) {
        case 1:
            if (!advance(op & 0x3fu)) return cfi_result::reached;
            continue;
        case 2:
            set_offset(op & 0x3fu, static_cast<std::int64_t>(r.uleb()) * prog.data_align);
            continue;
        case 3:
            restore(op & 0x3fu);
            continue;
        default:
            break;
        }
        switch (op) {
        case 0x00:  // nop
            break;
        case 0x01:  // set_loc
            location = r.pointer(prog.fde_encoding, 0);
            if (r.ok && location > target) return cfi_result::reached;
            break;
        case 0x02:  // advance_loc1
            if (!advance(r.u8()) && r.ok) return cfi_result::reached;
            break;
        case 0x03:  // advance_loc2
            if (!advance(r.fixed<std::uint16_t>()) && r.ok) return cfi_result::reached;
            break;
        case 0x04:  // advance_loc4
            if (!advance(r.fixed<std::uint32_t>()) && r.ok) return cfi_result::reached;
            break;
        case 0x05: {  // offset_extended
            const std::uint64_t reg = r.uleb();
            set_offset(reg, static_cast<std::int64_t>(r.uleb()) * prog.data_align);
            break;
        }
        case 0x06:  // restore_extended
            restore(r.uleb());
            break;
        case 0x07:  // undefined
            set_kind(r.uleb(), cfi_register_rule::undefined);
            break;
        case 0x08:  // same_value
            set_kind(r.uleb(), cfi_register_rule::unchanged);
            break;
        case 0x09: {  // register
            const std::uint64_t reg = r.uleb();
            r.uleb();
            if (tracked(reg)) return cfi_result::unsupported;
            break;
        }
        case 0x0a:  // remember_state
            if (depth == max_remembered) return cfi_result::unsupported;
            remembered[depth++] = row;
            break;
        case 0x0b:  // restore_state
            if (depth == 0) return cfi_result::unsupported;
            row = remembered[--depth];
            break;
        case 0x0c:  // def_cfa
            row.cfa_register = r.uleb();
            row.cfa_offset = static_cast<std::int64_t>(r.uleb());
            break;
        case 0x0d:  // def_cfa_register
            row.cfa_register = r.uleb();
            break;
        case 0x0e:  // def_cfa_offset
            row.cfa_offset = static_cast<std::int64_t>(r.uleb());
            break;
        case 0x10:  // expression
        case 0x16: {  // val_expression
            const std::uint64_t reg = r.uleb();
            r.skip(r.uleb());
            if (tracked(reg)) return cfi_result::unsupported;
            break;
        }
        case 0x11: {  // offset_extended_sf
            const std::uint64_t reg = r.uleb();
            set_offset(reg, r.sleb() * prog.data_align);
            break;
        }
        case 0x12:  // def_cfa_sf
            row.cfa_register = r.uleb();
            row.cfa_offset = r.sleb() * prog.data_align;
            break;
        case 0x13:  // def_cfa_offset_sf
            row.cfa_offset = r.sleb() * prog.data_align;
            break;
        case 0x14: {  // val_offset
            const std::uint64_t reg = r.uleb();
            r.uleb();
            if (tracked(reg)) return cfi_result::unsupported;
            break;
        }
        case 0x15: {  // val_offset_sf
            const std::uint64_t reg = r.uleb();
            r.sleb();
            if (tracked(reg)) return cfi_result::unsupported;
            break;
        }
#if defined(__aarch64__)
        case 0x2d:  // AARCH64_negate_ra_state: the walk strips signatures whatever the state
            break;
#endif
        case 0x2e:  // GNU_args_size
            r.uleb();
            break;
        default:  // def_cfa_expression, and everything this walk does not know
            return cfi_result::unsupported;
        }
    }
    return r.ok ? cfi_result::reached : cfi_result::unsupported;
}

// Packs the row into a rule, or rule_stop where the walk could not apply it.
inline std::uint64_t pack_rule(const cfi_row& row) noexcept {
    if (row.cfa_register != dwarf_sp && row.cfa_register != dwarf_fp) return rule_stop;
    if (row.cfa_offset < 0 || row.cfa_offset >= rule_cfa_limit) return rule_stop;
    // An undefined return address marks the outermost frame (_start, a thread's start).
    if (row.ra.kind != cfi_register_rule::at_offset) return rule_stop;
    const auto fits = [](std::int64_t v) { return v >= INT16_MIN && v <= INT16_MAX && v % 8 == 0; };
    if (!fits(row.ra.offset)) return rule_stop;
    std::uint64_t rule = rule_cfa | static_cast<std::uint64_t>(row.cfa_offset) << rule_cfa_shift |
                         std::uint64_t{static_cast<std::uint16_t>(row.ra.offset)} << rule_ra_shift;
    if (row.cfa_register == dwarf_fp) rule |= rule_cfa_on_fp;
    if (row.fp.kind == cfi_register_rule::at_offset) {
        if (!fits(row.fp.offset)) return rule_stop;
        rule |= rule_fp_saved | std::uint64_t{static_cast<std::uint16_t>(row.fp.offset)} << rule_fp_shift;
        // Worth a bit: the walk then reads the record through fp alone, as the frame-pointer
        // walk does, without waiting for the rule to compute the addresses.
        if (row.cfa_register == dwarf_fp && row.fp.offset == -row.cfa_offset &&
            row.ra.offset == row.fp.offset + 8) {
            rule |= rule_record_at_fp;
        }
    } else if (row.fp.kind == cfi_register_rule::undefined) {
        rule |= rule_fp_undefined;
    }
    return rule;
}

// Parses the CIE at `at` and runs its initial instructions.
inline bool read_cie(std::uintptr_t at, std::uintptr_t limit, cfi_program& prog, cfi_row& initial,
                     bool& augmented, bool& signal_frame) noexcept {
    cfi_reader r{};
    if (!cfi_record(at, limit, r)) return false;
    if (r.fixed<std::uint32_t>() != 0) return false;  // an FDE, not a CIE
    const std::uint8_t version = r.u8();
    if (version != 1 && version != 3) return false;
    char augmentation[8];
    std::size_t length = 0;
    for (char c = static_cast<char>(r.u8()); r.ok && c != '\0'; c = static_cast<char>(r.u8())) {
        if (length + 1 == sizeof augmentation) return false;
        augmentation[length++] = c;
    }
    augmentation[length] = '\0';
    if (!r.ok || (length != 0 && augmentation[0] != 'z')) return false;
    prog.code_align = r.uleb();
    prog.data_align = r.sleb();
    prog.ra_column = version == 1 ? r.u8() : r.uleb();
    prog.fde_encoding = 0;  // absolute
    augmented = length != 0;
    signal_frame = false;
    if (augmented) {
        const std::uint64_t data_length = r.uleb();
        if (!r.has(static_cast<std::size_t>(data_length))) return false;
        const std::uint8_t* data_end = r.p + data_length;
        for (std::size_t i = 1; i < length; ++i) {
            switch (augmentation[i]) {
            case 'R': prog.fde_encoding = r.u8(); break;
            case 'L': r.u8(); break;
            case 'P': {
                // The personality routine is never called, so its pointer is only stepped over.
                const std::uint8_t encoding = r.u8();
                r.pointer(static_cast<std::uint8_t>(encoding & 0x7f), 0);
                break;
            }
            case 'S': signal_frame = true; break;
            case 'B':  // aarch64: return addresses signed with the B key; stripped all the same
            case 'G':  // aarch64: memory-tagged frames
                break;
            default: return false;
            }
        }
        if (!r.ok || r.p > data_end) return false;
        r.p = data_end;
    }
    if (!r.ok || prog.code_align == 0) return false;
    initial = {dwarf_sp, 0, {cfi_register_rule::unchanged, 0}, {cfi_register_rule::unchanged, 0}};
    cfi_row scratch = initial;
    if (run_cfa_program(r, prog, 0, UINTPTR_MAX, scratch, initial) != cfi_result::reached) return false;
    return true;
}

// A module as the walk sees it: its address range, its .eh_frame_hdr (0 if it has none) and
// the mapping that holds the table, outside which parsing never reads, and a key that changes
// when another module takes its place (see module_key). The table's mapping is the module's
// range, except in static programs, where _dl_find_object describes one segment at a time.
struct cfi_module {
    std::uintptr_t start;
    std::uintptr_t end;
    std::uintptr_t header;
    std::uintptr_t table_start;
    std::uintptr_t table_end;
    std::uint64_t key;
};

// The rule for the return address `pc` in `m`. Cold: runs once per return address (and once
// more for each slot collision), never in the steady state.
MEMLENS_COLD inline std::uint64_t parse_rule(std::uintptr_t pc, const cfi_module& m) noexcept {
    if (m.header == 0) return rule_frame_record;
    // The call instruction, not the return address, which may be the next function's first.
    const std::uintptr_t target = pc - 1;
    cfi_reader r{reinterpret_cast<const std::uint8_t*>(m.header),
                 reinterpret_cast<const std::uint8_t*>(m.table_end), m.header < m.table_end};
    if (r.u8() != 1) return rule_frame_record;
    const std::uint8_t frame_encoding = r.u8();
    const std::uint8_t count_encoding = r.u8();
    const std::uint8_t table_encoding = r.u8();
    r.pointer(frame_encoding, m.header);
    if (count_encoding == 0xff || !r.ok) return rule_frame_record;
    const std::uintptr_t count = r.pointer(count_encoding, m.header);
    // The binary-search table: pairs of 4-byte offsets from the header, sorted by address, as
    // every linker writes it (DW_EH_PE_datarel | DW_EH_PE_sdata4).
    if (!r.ok || table_encoding != 0x3b || count == 0 || !r.has(8) ||
        count > static_cast<std::uintptr_t>(r.end - r.p) / 8) {
        return rule_frame_record;
    }
    const std::uint8_t* table = r.p;
    const auto entry = [&](std::uintptr_t i, int half) {
        std::int32_t v;
        std::memcpy(&v, table + i * 8 + static_cast<unsigned>(half) * 4, sizeof v);
        return static_cast<std::intptr_t>(v);
    };
    const auto wanted = static_cast<std::intptr_t>(target - m.header);
    if (entry(0, 0) > wanted) return rule_frame_record;
    std::uintptr_t low = 0;
    std::uintptr_t high = count;  // entry(low) <= wanted < entry(high), high as if infinite
    while (high - low > 1) {
        const std::uintptr_t mid = low + (high - low) / 2;
        if (entry(mid, 0) <= wanted) {
            low = mid;
        } else {
            high = mid;
        }
    }
    const std::uintptr_t fde = m.header + static_cast<std::uintptr_t>(entry(low, 1));
    cfi_reader f{};
    if (fde < m.table_start || !cfi_record(fde, m.table_end, f)) return rule_stop;
    const auto cie_field = reinterpret_cast<std::uintptr_t>(f.p);
    const std::uint32_t cie_offset = f.fixed<std::uint32_t>();
    if (!f.ok || cie_offset == 0 || cie_offset > cie_field - m.table_start) return rule_stop;
    cfi_program prog{};
    cfi_row initial{};
    bool augmented = false;
    bool signal_frame = false;
    if (!read_cie(cie_field - cie_offset, m.table_end, prog, initial, augmented, signal_frame)) {
        return rule_stop;
    }
    const std::uintptr_t begin = f.pointer(prog.fde_encoding, 0);
    const std::uintptr_t range = f.pointer(static_cast<std::uint8_t>(prog.fde_encoding & 0x0f), 0);
    if (!f.ok) return rule_stop;
    // Code the table does not cover (hand-written assembly without CFI directives).
    if (target < begin || target - begin >= range) return rule_frame_record;
    // A signal frame's "return address" is the interrupted instruction and its registers lie in
    // a kernel structure: ended, not guessed.
    if (signal_frame) return rule_stop;
    if (augmented) f.skip(f.uleb());
    if (!f.ok) return rule_stop;
    cfi_row row = initial;
    if (run_cfa_program(f, prog, begin, target, initial, row) != cfi_result::reached) return rule_stop;
    return pack_rule(row);
}

// ---- modules and the cache -----------------------------------------------------------------

// When a module is unloaded and another is loaded at the same addresses, a cached rule for an
// address there would describe the old code. The rule: a slot is sealed with the key of the
// module the rule came from, and a walk looks up afresh the module of each return address that
// lies in a library loaded by dlopen (one _dl_find_object per such module per walk, lock free)
// and accepts a slot only under that module's current key. The key mixes the mapping's start
// and end, the .eh_frame_hdr address, the link_map, its dynamic section and the module's path:
// two libraries built alike and loaded in turn at one address can agree on all the addresses,
// never on the path. What it cannot tell apart is one path rewritten between a dlclose and the
// next dlopen with the same layout. The main program and the libraries loaded with it at
// start-up are never unloaded: their key is fixed and their lookups are comparisons. Stale
// slots are never read; they are overwritten as the cache turns over.
struct main_program {
    std::atomic<int> state{0};  // 0: not looked up; 1: being looked up; 2: known or not found
    std::uintptr_t start = 0;   // written before state turns 2, read after
    std::uintptr_t end = 0;
    cfi_module module = {};
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline main_program main_module{};

constexpr std::uint64_t main_module_key = 0x6d61696e;

#if MEMLENS_DETAIL_CFI_WALK()
inline void describe_module(const dl_find_object& found, cfi_module& m) noexcept {
    m.start = reinterpret_cast<std::uintptr_t>(found.dlfo_map_start);
    m.end = reinterpret_cast<std::uintptr_t>(found.dlfo_map_end);
    m.header = reinterpret_cast<std::uintptr_t>(found.dlfo_eh_frame);
    m.table_start = m.start;
    m.table_end = m.end;
    if (m.header == 0 || (m.header >= m.start && m.header < m.end)) return;
    dl_find_object table;
    if (_dl_find_object(reinterpret_cast<void*>(m.header), &table) == 0 &&
        table.dlfo_link_map == found.dlfo_link_map) {
        m.table_start = reinterpret_cast<std::uintptr_t>(table.dlfo_map_start);
        m.table_end = reinterpret_cast<std::uintptr_t>(table.dlfo_map_end);
    } else {
        m.header = 0;
    }
}

// Independent products xor-ed together rather than a chain: this runs once per walk for each
// module outside the main program, on the walk's critical path.
inline std::uint64_t module_key(const dl_find_object& found) noexcept {
    const auto word = [](const void* p) { return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p)); };
    std::uint64_t dynamic = 0;
    std::uint64_t name = 0;
    if (const link_map* map = found.dlfo_link_map) {
        dynamic = word(map->l_ld);
        if (const char* path = map->l_name) {
            // Eight bytes at a time, in two lanes, so that the multiplications overlap.
            const std::size_t length = std::strlen(path);
            std::uint64_t a = length;
            std::uint64_t b = 0x2545f4914f6cdd1du;
            for (std::size_t i = 0; i < length; i += 8) {
                std::uint64_t chunk = 0;
                std::memcpy(&chunk, path + i, length - i < 8 ? length - i : 8);
                if ((i / 8) % 2 == 0) {
                    a = (a ^ chunk) * 0x9e3779b97f4a7c15u;
                } else {
                    b = (b ^ chunk) * 0xc2b2ae3d27d4eb4fu;
                }
            }
            name = a ^ (b >> 29) ^ (b << 35);
        }
    }
    const std::uint64_t h = name ^ word(found.dlfo_map_start) * 0x9e3779b97f4a7c15u ^
                            word(found.dlfo_map_end) * 0xc2b2ae3d27d4eb4fu ^
                            word(found.dlfo_eh_frame) * 0xff51afd7ed558ccdu ^
                            word(found.dlfo_link_map) * 0xc4ceb9fe1a85ec53u ^
                            dynamic * 0x94d049bb133111ebu;
    return h == main_module_key || h == 0 ? h + 1 : h;
}
#endif

// Finds the module that holds `pc`: false for an address in none (a corrupt return address).
inline bool find_module(std::uintptr_t pc, cfi_module& out) noexcept {
#if MEMLENS_DETAIL_CFI_WALK()
    dl_find_object found;
    if (_dl_find_object(reinterpret_cast<void*>(pc - 1), &found) != 0) return false;
    describe_module(found, out);
    out.key = module_key(found);
    return true;
#else
    (void)pc;
    (void)out;
    return false;
#endif
}

// The main program's range, looked up once.
MEMLENS_COLD inline void find_main_module() noexcept {
    int expected = 0;
    if (!main_module.state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) return;
#if MEMLENS_DETAIL_CFI_WALK()
    dl_find_object found;
    const unsigned long headers = ::getauxval(AT_PHDR);
    if (headers != 0 && _dl_find_object(reinterpret_cast<void*>(headers), &found) == 0) {
        describe_module(found, main_module.module);
        main_module.module.key = main_module_key;
        main_module.start = main_module.module.start;
        main_module.end = main_module.module.end;
    }
#endif
    main_module.state.store(2, std::memory_order_release);
}

// ---- modules loaded at start-up ------------------------------------------------------------

// The libraries the main program was linked against (the closure of its DT_NEEDED entries),
// and any preloaded ones, are mapped before any code runs and never unloaded, so an address in
// one of them needs no loader lookup and no key, like the main program's. They are found once,
// from the loader's public list (_r_debug.r_map): start-up objects head it, ahead of all that
// dlopen appends, so a walk that stops as soon as every needed name has been met reads only
// nodes that are never freed. A list that does not end that way (a name met under another
// file name and soname) leaves the set empty: every library then goes through _dl_find_object.
// The range of a module is its whole reservation; the loader keeps the gaps between its
// segments mapped inaccessible, so no other module is ever found inside it.
constexpr int max_startup_modules = 32;
constexpr int max_needed_names = 96;

struct startup_set {
    std::atomic<int> state{0};  // 0: not looked for; 1: being found; 2: known
    int count = 0;              // written before state turns 2, read after
    cfi_module modules[max_startup_modules] = {};
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline startup_set startup_modules{};

#if MEMLENS_DETAIL_CFI_WALK()
struct needed_names {
    const char* names[max_needed_names];
    bool met[max_needed_names];
    int count;
    int pending;
};

// The string table of `map`, which the loader has usually relocated in place and otherwise left
// relative to the load address: whichever lies inside the module.
inline const char* string_table(const link_map& map, const ElfW(Dyn) * dynamic) noexcept {
    std::uintptr_t table = 0;
    for (int i = 0; i < 512 && dynamic[i].d_tag != DT_NULL; ++i) {
        if (dynamic[i].d_tag == DT_STRTAB) table = dynamic[i].d_un.d_ptr;
    }
    for (const std::uintptr_t candidate : {table, table + map.l_addr}) {
        dl_find_object found;
        if (candidate != 0 && _dl_find_object(reinterpret_cast<void*>(candidate), &found) == 0 &&
            found.dlfo_link_map == &map) {
            return reinterpret_cast<const char*>(candidate);
        }
    }
    return nullptr;
}

// Adds the DT_NEEDED names of `map` not seen yet; false if they cannot be read or do not fit.
inline bool add_needed(const link_map& map, needed_names& needed) noexcept {
    const ElfW(Dyn)* dynamic = map.l_ld;
    if (!dynamic) return true;
    const char* strings = nullptr;
    for (int i = 0; i < 512 && dynamic[i].d_tag != DT_NULL; ++i) {
        if (dynamic[i].d_tag != DT_NEEDED) continue;
        if (!strings && !(strings = string_table(map, dynamic))) return false;
        const char* name = strings + dynamic[i].d_un.d_val;
        bool known = false;
        for (int k = 0; k < needed.count && !known; ++k) known = std::strcmp(needed.names[k], name) == 0;
        if (known) continue;
        if (needed.count == max_needed_names) return false;
        needed.names[needed.count] = name;
        needed.met[needed.count++] = false;
        ++needed.pending;
    }
    return true;
}

// Marks the name under which `map` was loaded as met: its file name or its soname.
inline void meet(const link_map& map, needed_names& needed) noexcept {
    const char* path = map.l_name ? map.l_name : "";
    const char* file = std::strrchr(path, '/');
    file = file ? file + 1 : path;
    const char* soname = nullptr;
    if (const ElfW(Dyn)* dynamic = map.l_ld) {
        for (int i = 0; i < 512 && dynamic[i].d_tag != DT_NULL; ++i) {
            if (dynamic[i].d_tag != DT_SONAME) continue;
            if (const char* strings = string_table(map, dynamic)) soname = strings + dynamic[i].d_un.d_val;
        }
    }
    for (int k = 0; k < needed.count; ++k) {
        if (needed.met[k]) continue;
        if (std::strcmp(needed.names[k], file) == 0 || (soname && std::strcmp(needed.names[k], soname) == 0)) {
            needed.met[k] = true;
            --needed.pending;
        }
    }
}
#endif

MEMLENS_COLD inline void find_startup_modules() noexcept {
    int expected = 0;
    if (!startup_modules.state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) return;
    int count = 0;
#if MEMLENS_DETAIL_CFI_WALK()
    needed_names needed{};
    const link_map* head = _r_debug.r_map;
    bool ok = head != nullptr && add_needed(*head, needed);
    for (const link_map* map = head ? head->l_next : nullptr; ok && needed.pending > 0; map = map->l_next) {
        if (!map || count == max_startup_modules) {
            ok = false;
            break;
        }
        meet(*map, needed);
        ok = add_needed(*map, needed);
        dl_find_object found;
        if (map->l_ld && _dl_find_object(const_cast<ElfW(Dyn)*>(map->l_ld), &found) == 0 &&
            found.dlfo_link_map == map) {
            cfi_module& m = startup_modules.modules[count++];
            describe_module(found, m);
            m.key = main_module_key;
        }
    }
    if (!ok) count = 0;
#endif
    startup_modules.count = count;
    startup_modules.state.store(2, std::memory_order_release);
}

// The start-up module that holds `pc`, or null.
inline const cfi_module* startup_module(std::uintptr_t pc) noexcept {
    const int state = startup_modules.state.load(std::memory_order_acquire);
    if (MEMLENS_UNLIKELY(state != 2)) {
        if (state == 0) find_startup_modules();
        if (startup_modules.state.load(std::memory_order_acquire) != 2) return nullptr;
    }
    for (int i = 0; i < startup_modules.count; ++i) {
        const cfi_module& m = startup_modules.modules[i];
        if (pc - 1 - m.start < m.end - m.start) return &m;
    }
    return nullptr;
}

// One slot per return address, direct mapped: {hash(pc) ^ rule ^ key, rule}, where hash(pc)
// is the multiplication that also picks the slot. A reader accepts a slot only if the two words
// agree with the address and the module key it asks with, so a slot half overwritten by another
// thread, or left by an unloaded module, reads as a miss (short of a coincidence in the 51 bits
// the slot index leaves, and even then every read the rule leads to is bounds-checked).
struct rule_slot {
    std::atomic<std::uint64_t> check{0};
    std::atomic<std::uint64_t> rule{0};
};

constexpr std::size_t rule_cache_bits = 13;
constexpr std::size_t rule_cache_slots = std::size_t{1} << rule_cache_bits;

// 128 KiB of zero pages: costs nothing until the hybrid walk runs.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline rule_slot rule_cache[rule_cache_slots]{};

MEMLENS_ALWAYS_INLINE std::uint64_t pc_hash(std::uintptr_t pc) noexcept {
    return pc * 0x9e3779b97f4a7c15u;
}

MEMLENS_ALWAYS_INLINE rule_slot& rule_slot_for(std::uint64_t hash) noexcept {
    return rule_cache[hash >> (64 - rule_cache_bits)];
}

/// Forgets the cached rule of return address `pc` (for measuring the cold walk).
inline void forget_rule(std::uintptr_t pc) noexcept {
    rule_slot& slot = rule_slot_for(pc_hash(pc));
    slot.check.store(0, relaxed);
    slot.rule.store(0, relaxed);
}

// The modules one walk has looked up outside the main program, so that a run of frames in one
// module costs one lookup. Per walk, never kept: a module may be gone by the next one.
struct module_memo {
    static constexpr int capacity = 4;
    cfi_module modules[capacity];
    int size = 0;
    int next = 0;

    const cfi_module* find(std::uintptr_t pc) const noexcept {
        for (int i = 0; i < size; ++i) {
            if (pc - 1 - modules[i].start < modules[i].end - modules[i].start) return &modules[i];
        }
        return nullptr;
    }
};

MEMLENS_NOINLINE inline const cfi_module* remember_module(std::uintptr_t pc, module_memo& memo) noexcept {
    cfi_module& slot = memo.modules[memo.next];
    if (!find_module(pc, slot)) return nullptr;
    memo.next = (memo.next + 1) % module_memo::capacity;
    if (memo.size < module_memo::capacity) ++memo.size;
    return &slot;
}

// A cache miss: parses the rule and stores it. `m` is null for the main program.
MEMLENS_NOINLINE inline std::uint64_t rule_miss(std::uintptr_t pc, const cfi_module* m) noexcept {
    if (!m) m = &main_module.module;
    const std::uint64_t rule = parse_rule(pc, *m);
    rule_slot& slot = rule_slot_for(pc_hash(pc));
    slot.rule.store(rule, relaxed);
    slot.check.store(pc_hash(pc) ^ rule ^ m->key, relaxed);
    return rule;
}

// The rule of a return address whose slot does not hold it under the start-up key: found from
// its module, which this places first; 0 when the address lies in no module. Out of line, so
// that the walk's loop keeps its few registers.
MEMLENS_NOINLINE inline std::uint64_t rule_elsewhere(std::uintptr_t pc, std::uint64_t hash,
                                                     module_memo& memo) noexcept {
    const cfi_module* m = nullptr;
    // While another thread looks the main program up, its addresses too go through the lookups.
    const bool main_known = main_module.state.load(std::memory_order_acquire) == 2;
    if (!main_known || pc - 1 - main_module.start >= main_module.end - main_module.start) {
        if (!(m = startup_module(pc)) && !(m = memo.find(pc)) && !(m = remember_module(pc, memo))) return 0;
    }
    const rule_slot& slot = rule_slot_for(hash);
    const std::uint64_t rule = slot.rule.load(relaxed);
    if ((slot.check.load(relaxed) ^ rule ^ (m ? m->key : main_module_key)) == hash) return rule;
    return rule_miss(pc, m);
}

// ---- the walk ------------------------------------------------------------------------------

// The registers the walk tracks, as they are in the frame it is about to leave: the return
// address into it, its stack pointer (the callee's CFA) and its frame pointer.
struct unwind_registers {
    std::uintptr_t pc;
    std::uintptr_t sp;
    std::uintptr_t fp;
};

/// Writes up to `max` return addresses, starting from `regs` and dropping the first `skip`;
/// reads stack memory only at word-aligned addresses in [low, last] (where a two-word record
/// fits) and module memory only inside the module _dl_find_object names. Never allocates,
/// never locks. Ends at the first frame it cannot unwind soundly: a return address in no
/// module, an expression or register rule, a signal frame, a frame that does not move up.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "hwaddress")))
#endif
MEMLENS_ALWAYS_INLINE std::size_t
hybrid_walk(std::uintptr_t* out, std::size_t max, std::size_t skip, unwind_registers regs,
            std::uintptr_t low, std::uintptr_t last) noexcept {
    if (max == 0) return 0;
    if (MEMLENS_UNLIKELY(main_module.state.load(std::memory_order_acquire) == 0)) find_main_module();
    // In [low, last] and word aligned, in one comparison: rotated, a misaligned offset has a
    // top bit set.
    low = (low + 7) & ~std::uintptr_t{7};
    if (last < low) return 0;
    const std::uintptr_t words = (last - low) >> 3;
    const auto readable = [low, words](std::uintptr_t address) {
        const std::uintptr_t offset = address - low;
        return ((offset >> 3) | (offset << 61)) <= words;
    };
    const auto load = [](std::uintptr_t address) {
        return *reinterpret_cast<const std::uintptr_t*>(address);
    };
    module_memo memo;
    std::uintptr_t pc = regs.pc;
    std::uintptr_t sp = regs.sp;
    std::uintptr_t fp = regs.fp;
    // False once sp is only a lower bound: after a frame record on aarch64, where the record
    // need not sit at the top of its frame.
    bool sp_exact = true;
    // Negative while frames are skipped: one register for both counts.
    auto position = -static_cast<std::ptrdiff_t>(skip);
    const auto end = static_cast<std::ptrdiff_t>(max);
    while (pc != 0) {
        if (position >= 0) out[position] = pc;
        if (++position == end) break;
        const std::uint64_t hash = pc_hash(pc);
        const rule_slot& slot = rule_slot_for(hash);
        std::uint64_t rule = slot.rule.load(relaxed);
        // A slot sealed with the fixed key was filled for this address while it lay in the main
        // program or a start-up library, which are never unloaded, so it still does: the
        // module needs no finding. That is most frames, and every frame of libc's start-up.
        if (MEMLENS_UNLIKELY((slot.check.load(relaxed) ^ rule ^ main_module_key) != hash)) {
            rule = rule_elsewhere(pc, hash, memo);
        }
        std::uintptr_t next_sp;
        std::uintptr_t next_fp = fp;
        std::uintptr_t ra_at;
        const std::uint64_t kind = rule & rule_kind_mask;
        if (MEMLENS_LIKELY(rule & rule_record_at_fp)) {
            if (!readable(fp)) break;
            ra_at = fp + sizeof(std::uintptr_t);
            next_fp = load(fp);
            next_sp = fp + rule_cfa_offset(rule);
            sp_exact = true;
        } else if (kind == rule_cfa) {
            if (!(rule & rule_cfa_on_fp) && !sp_exact) break;
            const std::uintptr_t cfa = ((rule & rule_cfa_on_fp) ? fp : sp) + rule_cfa_offset(rule);
            ra_at = cfa + static_cast<std::uintptr_t>(rule_ra_offset(rule));
            if (!readable(ra_at)) break;
            if (rule & rule_fp_saved) {
                const std::uintptr_t fp_at = cfa + static_cast<std::uintptr_t>(rule_fp_offset(rule));
                if (!readable(fp_at)) break;
                next_fp = load(fp_at);
            } else if (rule & rule_fp_undefined) {
                next_fp = 0;
            }
            next_sp = cfa;
            sp_exact = true;
        } else if (kind == rule_frame_record) {
            if (!readable(fp)) break;
            ra_at = fp + sizeof(std::uintptr_t);
            next_fp = load(fp);
            next_sp = fp + 2 * sizeof(std::uintptr_t);
#if defined(__aarch64__)
            sp_exact = false;
#endif
        } else {
            break;
        }
        // Each caller's frame lies above its callee's: a walk that does not climb has gone astray.
        if (next_sp <= sp) break;
        pc = plain_code_address(load(ra_at));
        sp = next_sp;
        fp = next_fp;
    }
    return position > 0 ? static_cast<std::size_t>(position) : 0;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
