// A checker of Prometheus's text exposition format 0.0.4, for the tests: every line is a
// comment, a HELP or TYPE line, or a sample whose name, labels and value follow the format's
// grammar; families are contiguous, typed before their samples, at most once each; and, by
// memlens's conventions, counters end in _total. Returns each sample's value by its series.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

namespace prometheus_grammar {

inline bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
inline bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

[[noreturn]] inline void refuse(std::size_t line, const std::string& why, std::string_view text) {
    throw std::runtime_error("line " + std::to_string(line) + ": " + why + ": " + std::string(text));
}

inline double parse_value(std::string_view v, std::size_t line, std::string_view text) {
    if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (v == "+Inf" || v == "Inf") return std::numeric_limits<double>::infinity();
    if (v == "-Inf") return -std::numeric_limits<double>::infinity();
    const std::string s(v);
    if (s.empty()) refuse(line, "no value", text);
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || errno == ERANGE) refuse(line, "not a number '" + s + "'", text);
    for (const char c : s) {
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
            refuse(line, "not a decimal number '" + s + "'", text);
        }
    }
    return d;
}

// The family a sample belongs to: its name, or for a summary / histogram its base name.
inline std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
            const std::string base = name.substr(0, name.size() - s.size());
            const auto t = types.find(base);
            if (t != types.end() && (t->second == "histogram" || t->second == "summary")) return base;
        }
    }
    return name;
}

inline std::map<std::string, double> check(std::string_view text) {
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;
    std::set<std::string> helped, finished;
    std::string current;  // the family whose lines are being read
    const auto enter = [&](const std::string& family, std::size_t line, std::string_view l) {
        if (family == current) return;
        if (finished.count(family)) refuse(line, "family '" + family + "' is not contiguous", l);
        if (!current.empty()) finished.insert(current);
        current = family;
    };
    if (!text.empty() && text.back() != '\n') refuse(0, "the text does not end with a line feed", text);
    std::size_t line = 0;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = text.find('\n', at);
        const std::string_view l = text.substr(at, end - at);
        at = end + 1;
        ++line;
        if (l.empty()) continue;
        if (l[0] == '#') {
            const bool help = l.rfind("# HELP ", 0) == 0, type = l.rfind("# TYPE ", 0) == 0;
            if (!help && !type) continue;  // a plain comment
            std::size_t i = 7;
            const std::size_t n0 = i;
            if (i >= l.size() || !name_start(l[i])) refuse(line, "bad metric name", l);
            while (i < l.size() && name_char(l[i])) ++i;
            const std::string name(l.substr(n0, i - n0));
            enter(name, line, l);
            if (help) {
                if (i < l.size() && l[i] != ' ') refuse(line, "bad HELP line", l);
                if (!helped.insert(name).second) refuse(line, "second HELP for " + name, l);
                const std::string_view doc = i < l.size() ? l.substr(i + 1) : std::string_view();
                for (std::size_t k = 0; k < doc.size(); ++k) {
                    if (doc[k] == '\\' && (k + 1 == doc.size() || (doc[k + 1] != '\\' && doc[k + 1] != 'n'))) {
                        refuse(line, "bad escape in HELP", l);
                    }
                    if (doc[k] == '\\') ++k;
                }
            } else {
                if (i >= l.size() || l[i] != ' ') refuse(line, "bad TYPE line", l);
                const std::string t(l.substr(i + 1));
                if (t != "counter" && t != "gauge" && t != "histogram" && t != "summary" && t != "untyped") {
                    refuse(line, "unknown type '" + t + "'", l);
                }
                if (types.count(name)) refuse(line, "second TYPE for " + name, l);
                if (samples.lower_bound(name) != samples.end() && samples.lower_bound(name)->first.rfind(name, 0) == 0) {
                    const std::string& k = samples.lower_bound(name)->first;
                    if (k == name || k[name.size()] == '{') refuse(line, "TYPE after samples of " + name, l);
                }
                if (t == "counter" && (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0)) {
                    refuse(line, "a counter's name should end in _total", l);
                }
                types[name] = t;
            }
            continue;
        }
        std::size_t i = 0;
        if (!name_start(l[0])) refuse(line, "bad metric name", l);
        while (i < l.size() && name_char(l[i])) ++i;
        const std::string name(l.substr(0, i));
        enter(family_of(name, types), line, l);
        std::string key = name;
        if (i < l.size() && l[i] == '{') {
            ++i;
            key += '{';
            std::set<std::string> seen;
            bool first = true;
            while (i < l.size() && l[i] != '}') {
                const std::size_t n0 = i;
                if (!((l[i] >= 'a' && l[i] <= 'z') || (l[i] >= 'A' && l[i] <= 'Z') || l[i] == '_')) {
                    refuse(line, "bad label name", l);
                }
                while (i < l.size() && name_char(l[i]) && l[i] != ':') ++i;
                const std::string label(l.substr(n0, i - n0));
                if (label.rfind("__", 0) == 0) refuse(line, "reserved label name", l);
                if (!seen.insert(label).second) refuse(line, "repeated label " + label, l);
                if (i + 1 >= l.size() || l[i] != '=' || l[i + 1] != '"') refuse(line, "expected =\"", l);
                i += 2;
                std::string value;
                for (;;) {
                    if (i >= l.size()) refuse(line, "unterminated label value", l);
                    const char c = l[i++];
                    if (c == '"') break;
                    if (c == '\\') {
                        if (i >= l.size()) refuse(line, "unterminated escape", l);
                        const char e = l[i++];
                        if (e == '\\') value += '\\';
                        else if (e == '"') value += '"';
                        else if (e == 'n') value += '\n';
                        else refuse(line, "bad escape in label value", l);
                    } else {
                        value += c;
                    }
                }
                if (!first) key += ',';
                first = false;
                key += label + "=\"" + value + "\"";
                if (i < l.size() && l[i] == ',') ++i;
                else if (i < l.size() && l[i] != '}') refuse(line, "expected , or }", l);
            }
            if (i >= l.size()) refuse(line, "unterminated label set", l);
            ++i;
            key += '}';
        }
        if (i >= l.size() || (l[i] != ' ' && l[i] != '\t')) refuse(line, "expected a blank before the value", l);
        while (i < l.size() && (l[i] == ' ' || l[i] == '\t')) ++i;
        std::size_t v0 = i;
        while (i < l.size() && l[i] != ' ' && l[i] != '\t') ++i;
        const double value = parse_value(l.substr(v0, i - v0), line, l);
        while (i < l.size() && (l[i] == ' ' || l[i] == '\t')) ++i;
        if (i < l.size()) {  // a timestamp: an integer of milliseconds
            v0 = i;
            if (l[i] == '-') ++i;
            if (i == l.size()) refuse(line, "bad timestamp", l);
            for (; i < l.size(); ++i) {
                if (l[i] < '0' || l[i] > '9') refuse(line, "bad timestamp", l);
            }
        }
        if (!samples.emplace(key, value).second) refuse(line, "repeated series " + key, l);
    }
    return samples;
}

}  // namespace prometheus_grammar
