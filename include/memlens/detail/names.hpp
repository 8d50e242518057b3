// memlens/detail/names.hpp: the names and paths that symbolizers give, made into what people
// read: a function's qualified name, its short form with template arguments collapsed, compiler
// clones folded into their function, source paths normalized, and which files and modules are
// the system's rather than the program's.
#pragma once

#include <cctype>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

inline bool starts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.substr(0, prefix.size()) == prefix;
}

inline bool name_char(char c) noexcept { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Where an operator's name ends, for `at` just past the word "operator": "()", "[]", a symbol
// run ("<<", "<=>"), or a word ("new", "delete[]", "bool"); template arguments are not part of it.
inline std::size_t operator_name_end(std::string_view name, std::size_t at) noexcept {
    const std::size_t size = name.size();
    if (name.substr(at, 2) == "()" || name.substr(at, 2) == "[]") return at + 2;
    if (at < size && name[at] == ' ') {
        std::size_t j = at + 1;
        while (j < size && name_char(name[j])) ++j;
        if (name.substr(j, 2) == "[]") j += 2;
        return j;
    }
    std::size_t j = at;
    while (j < size && name[j] != '\0' && std::strchr("<>=!+-*/%^&|~,", name[j])) ++j;
    return j;
}

// Whether "operator" starts at `i` as a word of its own and names an operator.
inline bool operator_at(std::string_view name, std::size_t i) noexcept {
    return name.substr(i, 8) == "operator" && (i == 0 || !name_char(name[i - 1])) &&
           i + 8 < name.size() && !name_char(name[i + 8]);
}

constexpr std::string_view anonymous_namespace = "(anonymous namespace)";

// "void ns::f<int>(int) const" -> "ns::f<int>": the qualified name without return type or
// parameters. Template arguments, lambdas ("{lambda(int)#1}") and "(anonymous namespace)" are
// parts of the name, as are an operator's symbols ("operator()", "operator<<", "operator new").
inline std::string qualified_name(std::string_view function) {
    const std::size_t size = function.size();
    int depth = 0;
    std::size_t start = 0;
    std::size_t end = size;
    for (std::size_t i = 0; i < size; ++i) {
        const char c = function[i];
        if (function.substr(i, anonymous_namespace.size()) == anonymous_namespace) {
            i += anonymous_namespace.size() - 1;
        } else if (depth == 0 && operator_at(function, i)) {
            std::size_t j = operator_name_end(function, i + 8);
            // "operator<< <char>": the template arguments follow a space.
            if (function.substr(j, 2) == " <") ++j;
            i = j - 1;
        } else if (c == '<' || c == '{' || (c == '(' && depth > 0)) {
            ++depth;
        } else if (c == '>' || c == '}' || (c == ')' && depth > 0)) {
            --depth;
        } else if (depth == 0 && c == '(' && i > 0) {
            end = i;
            break;
        } else if (depth == 0 && c == ' ') {
            start = i + 1;
        }
    }
    return std::string(function.substr(start, end - start));
}

// The qualified name with every template argument list collapsed: "std::vector<>::push_back",
// "std::map<>::operator[]", "run<>", as tables and trees show names; lambdas and operators stay.
inline std::string short_name(std::string_view function) {
    const std::string name = qualified_name(function);
    std::string out;
    out.reserve(name.size());
    const std::size_t size = name.size();
    for (std::size_t i = 0; i < size; ++i) {
        if (name.compare(i, anonymous_namespace.size(), anonymous_namespace) == 0) {
            out.append(anonymous_namespace);
            i += anonymous_namespace.size() - 1;
        } else if (operator_at(name, i)) {
            const std::size_t j = operator_name_end(name, i + 8);
            out.append(name, i, j - i);
            i = j - 1;
        } else if (name[i] == '<' && (i == 0 || name[i - 1] == '.')) {
            // Python's names for code without one ("<module>", "f.<locals>.g", "<lambda>"):
            // no C++ name starts a template argument list there.
            const std::size_t j = name.find('>', i);
            const std::size_t end = j == std::string::npos ? size : j + 1;
            out.append(name, i, end - i);
            i = end - 1;
        } else if (name[i] == '<') {
            // Skip to the matching '>': arguments may hold lambdas, whose "(...)" and "{...}"
            // never hold an unmatched '<', and operators ("operator<"), whose symbols are skipped.
            int depth = 0;
            std::size_t j = i;
            for (; j < size; ++j) {
                if (operator_at(name, j)) {
                    j = operator_name_end(name, j + 8) - 1;
                } else if (name[j] == '<') {
                    ++depth;
                } else if (name[j] == '>' && --depth == 0) {
                    break;
                }
            }
            out += "<>";
            i = j;
        } else {
            out += name[i];
        }
    }
    return out;
}

// A compiler's copy of a function, folded into the function: "f(int) [clone .isra.0]" and
// "main.cold" are f(int) and main, whose lines the copy was made from.
inline std::string without_clone_suffix(std::string name) {
    // Demangled clones carry " [clone .suffix]", as many as the compiler stacked.
    for (std::size_t at; (at = name.rfind(" [clone .")) != std::string::npos && name.back() == ']';) {
        name.resize(at);
    }
    // A C name, or one that was not demangled: "main.cold", "helper.part.0", "f.isra.0.cold".
    if (name.find('(') == std::string::npos) {
        static constexpr std::string_view suffixes[] = {".cold", ".part", ".isra", ".constprop",
                                                        ".lto_priv", ".localalias"};
        for (bool folded = true; folded;) {
            folded = false;
            std::size_t end = name.size();
            while (end > 0 && std::isdigit(static_cast<unsigned char>(name[end - 1]))) --end;
            if (end < name.size() && end > 0 && name[end - 1] == '.') --end;
            for (std::string_view suffix : suffixes) {
                if (end > suffix.size() && std::string_view(name).substr(end - suffix.size(), suffix.size()) == suffix) {
                    name.resize(end - suffix.size());
                    folded = true;
                    break;
                }
            }
        }
    }
    return name;
}

// "./src/../include//a/./b.h" -> "include/a/b.h": the same file always reads the same way. Only
// the text changes (no symlink is followed); ".." that would climb above the start is kept.
inline std::string normalized_path(std::string_view path) {
    if (path.empty()) return {};
    const bool absolute = path.front() == '/';
    std::vector<std::string_view> parts;
    std::size_t climbs = 0;  // leading ".." of a relative path, which nothing can remove
    for (std::size_t from = 0; from <= path.size();) {
        std::size_t to = path.find('/', from);
        if (to == std::string_view::npos) to = path.size();
        const std::string_view part = path.substr(from, to - from);
        from = to + 1;
        if (part.empty() || part == ".") continue;
        if (part != "..") {
            parts.push_back(part);
        } else if (!parts.empty()) {
            parts.pop_back();
        } else if (!absolute) {
            ++climbs;  // "/.." is "/"
        }
    }
    std::string out = absolute ? "/" : "";
    for (std::size_t i = 0; i < climbs; ++i) out += "../";
    for (std::string_view part : parts) {
        out.append(part);
        out += '/';
    }
    if (out.size() > 1) out.pop_back();
    return out.empty() ? std::string(".") : out;
}

// A header of the compiler or the system: never the line that asked for memory. (The C
// library's own sources are told by their module, runtime_module.)
inline bool system_file(std::string_view file) noexcept {
    return starts_with(file, "/usr/include/") || starts_with(file, "/usr/lib/gcc/") ||
           starts_with(file, "/usr/local/include/") || starts_with(file, "/usr/lib/llvm-") ||
           file.find("/include/c++/") != std::string_view::npos;
}

// The C and C++ runtimes, by the file name of the module: their frames are never a site.
inline bool runtime_module(std::string_view module) noexcept {
    const std::size_t slash = module.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? module : module.substr(slash + 1);
    static constexpr std::string_view runtimes[] = {"libc.so", "libstdc++.so", "libc++.so", "libc++abi.so",
                                                    "libgcc_s.so", "libm.so", "libpthread.so", "ld-linux",
                                                    "ld64.so", "libdl.so"};
    for (std::string_view r : runtimes) {
        if (starts_with(name, r)) return true;
    }
    return false;
}

// A function of the C++ standard library or its ABI support, by its qualified name.
inline bool runtime_function(std::string_view qualified) noexcept {
    return starts_with(qualified, "std::") || starts_with(qualified, "__gnu_cxx::") ||
           starts_with(qualified, "__cxxabiv1::") || starts_with(qualified, "__cxx") ||
           starts_with(qualified, "operator new") || starts_with(qualified, "operator delete");
}

}  // namespace detail
MEMLENS_NAMESPACE_END
