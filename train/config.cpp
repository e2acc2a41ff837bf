#include "train/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <toml.hpp>
#include <unistd.h>

namespace miras {

namespace {

bool is_bare_key(const std::string& k) {
    return !k.empty() &&
           std::all_of(k.begin(), k.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
}

// "a.b.c" -> {"a", "b", "c"}; nullopt when a component is not a bare TOML key.
std::optional<std::vector<std::string>> split_key(const std::string& key) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t dot = key.find('.', start);
        parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (!is_bare_key(parts.back())) return std::nullopt;
        if (dot == std::string::npos) return parts;
        start = dot + 1;
    }
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A text of the user's for a message: at most kMaxEcho bytes of it (a
// 100,000-character override made a 100 KB message), cut at a UTF-8
// character boundary, with the length said.
constexpr size_t kMaxEcho = 80;
std::string clip(const std::string& s) {
    if (s.size() <= kMaxEcho) return s;
    size_t n = kMaxEcho;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;  // not inside a character
    return s.substr(0, n) + "... (" + std::to_string(s.size()) + " bytes)";
}

// Shortest text that reads back to the same double.
std::string number_text(double x) {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, x);
    return std::string(buf, res.ptr);
}

// TOML needs a '.' or exponent to read a float back as a float.
std::string float_literal(double x) {
    std::string s = number_text(x);
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
}

std::string string_literal(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

std::string key_literal(const std::string& k) { return is_bare_key(k) ? k : string_literal(k); }

// A value as TOML source text, arrays and inline tables included.
std::string literal(const toml::value& v) {
    if (v.is_boolean()) return v.as_boolean() ? "true" : "false";
    if (v.is_integer()) return std::to_string(v.as_integer());
    if (v.is_floating()) return float_literal(v.as_floating());
    if (v.is_string()) return string_literal(v.as_string().str);
    if (v.is_array()) {
        std::string s = "[";
        for (const toml::value& x : v.as_array()) s += (s.size() > 1 ? ", " : "") + literal(x);
        return s + "]";
    }
    if (v.is_table()) {
        std::map<std::string, const toml::value*> sorted;
        for (const auto& [k, x] : v.as_table()) sorted[k] = &x;
        std::string s = "{";
        for (const auto& [k, x] : sorted) s += (s.size() > 1 ? ", " : " ") + key_literal(k) + " = " + literal(*x);
        return s + " }";
    }
    return toml::format(v);  // dates and times
}

std::string type_name(const toml::value& v) {
    if (v.is_boolean()) return "boolean";
    if (v.is_integer()) return "integer";
    if (v.is_floating()) return "float";
    if (v.is_string()) return "string";
    if (v.is_array()) return "array";
    if (v.is_table()) return "table";
    return "date/time";
}

// toml11 (3.7) reads an integer literal beyond 64 bits without an error:
// decimal, hexadecimal and octal ones saturate (99999999999999999999 is read
// as 2^63 − 1), binary ones wrap. TOML requires an error, so the literal's
// text (the value's region of its source line) is read again: true if it
// is exactly the integer toml11 stored.
bool integer_literal_fits(const toml::value& v) {
    const toml::source_location loc = v.location();
    if (loc.column() < 1 || loc.column() - 1 + loc.region() > loc.line_str().size()) return true;  // no source text
    std::string text = loc.line_str().substr(loc.column() - 1, loc.region());
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    if (!text.empty() && text[0] == '+') text.erase(0, 1);
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'o' || text[1] == 'b')) {
        base = text[1] == 'x' ? 16 : text[1] == 'o' ? 8 : 2;
        text.erase(0, 2);
    }
    int64_t x = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), x, base);
    return ec == std::errc{} && ptr == text.data() + text.size() && x == v.as_integer();
}

// toml11 (3.7) reads a float literal beyond the range of a double without
// an error: 1e400 as the largest double, 1e-400 as 0 (so optim.lr = 1e-400
// trained at a learning rate of 0). The literal's text is read again with
// strtod, which says so (ERANGE with a result of 0 or infinity; a subnormal
// result is representable and kept). True if it is in range.
bool float_literal_fits(const toml::value& v) {
    if (!v.is_floating()) return true;
    const toml::source_location loc = v.location();
    if (loc.column() < 1 || loc.column() - 1 + loc.region() > loc.line_str().size()) return true;  // no source text
    std::string text = loc.line_str().substr(loc.column() - 1, loc.region());
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    errno = 0;
    const double x = std::strtod(text.c_str(), nullptr);
    return !(errno == ERANGE && (x == 0 || std::isinf(x)));
}

std::string describe(const toml::value& v) {
    if (v.is_integer() && !integer_literal_fits(v)) {
        const toml::source_location loc = v.location();
        return "integer " + loc.line_str().substr(loc.column() - 1, loc.region()) + ", beyond 64 bits";
    }
    if (!float_literal_fits(v)) {
        const toml::source_location loc = v.location();
        return "float " + loc.line_str().substr(loc.column() - 1, loc.region()) +
               ", beyond the range of a double (it would be read as " + number_text(v.as_floating()) + ")";
    }
    return v.is_table() ? "table" : type_name(v) + " " + literal(v);
}

template <typename T>
std::string range_text(T lo, T hi) {
    if constexpr (std::is_floating_point_v<T>)
        return "[" + number_text(lo) + ", " + number_text(hi) + "]";
    else
        return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

std::optional<double> as_number(const toml::value& v) {
    if (v.is_floating() && float_literal_fits(v)) return v.as_floating();
    if (v.is_integer() && integer_literal_fits(v)) return static_cast<double>(v.as_integer());
    return std::nullopt;
}

// toml11 parses nested arrays and inline tables recursively and dotted keys
// in time quadratic in their length: a file of 50,000 '[' overflows the
// stack, one dotted key of 100,000 parts takes minutes. No config needs more
// than a few levels (the schema's deepest key, memory.fixed_gates.theta, has
// three parts), so deeper text is refused before toml11 sees it.
constexpr int kMaxNesting = 32;   // arrays and inline tables inside each other
constexpr int kMaxKeyParts = 32;  // parts of one dotted key (a.b.c: 3)

// Index just past the string that starts at text[i] (a quote), counting its
// newlines into `line`; text.size() if it is not closed (toml11 says so).
size_t skip_string(const std::string& text, size_t i, int64_t& line) {
    const char q = text[i];
    const bool multi = text.compare(i, 3, std::string(3, q)) == 0;
    i += multi ? 3 : 1;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '\\' && q == '"') {
            if (i + 1 < text.size() && text[i + 1] == '\n') ++line;  // a line-ending backslash
            i += 2;  // an escape: the next character never closes the string
            continue;
        }
        if (c == '\n') {
            if (!multi) return i;
            ++line;
        }
        if (c == q && (!multi || text.compare(i, 3, std::string(3, q)) == 0)) {
            if (!multi) return i + 1;
            i += 3;
            // Up to two more quotes are content: """a"""" is the string a".
            for (int extra = 0; extra < 2 && i < text.size() && text[i] == q; ++extra) ++i;
            return i;
        }
        ++i;
    }
    return text.size();
}

// toml11 reads a binary integer digit by digit with a doubling int64 place
// value, which overflows (undefined behaviour) at the 63rd digit, leading
// zeros included. Throws if the token starting at text[i] is such a literal.
constexpr size_t kMaxBinaryDigits = 62;

void check_binary_literal(const std::string& text, size_t i, int64_t line, const std::string& source) {
    const bool starts_token = i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '_');
    if (!starts_token || text.compare(i, 2, "0b") != 0) return;
    size_t digits = 0, j = i + 2;
    for (; j < text.size() && (text[j] == '0' || text[j] == '1' || text[j] == '_'); ++j) digits += text[j] != '_';
    if (digits > kMaxBinaryDigits)
        throw std::runtime_error(source + ": line " + std::to_string(line) + ": binary integer " +
                                 text.substr(i, std::min<size_t>(j - i, 24)) + "… has " + std::to_string(digits) +
                                 " digits; at most " + std::to_string(kMaxBinaryDigits) +
                                 " are read (beyond 64 bits, or too long for the TOML reader)");
}

// Throws if `text` nests arrays or inline tables deeper than kMaxNesting or
// has a dotted key of more than kMaxKeyParts parts. Outside strings and
// comments, dots follow each other in one run of key and value characters
// only within a dotted key (a float or a time has one), so counting the dots
// of each run needs no full TOML grammar.
void check_nesting(const std::string& text, const std::string& source) {
    int64_t line = 1;
    int depth = 0, dots = 0;
    for (size_t i = 0; i < text.size();) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\'') {
            i = skip_string(text, i, line);  // a quoted key part continues the run
            continue;
        }
        if (c == '.') {
            if (++dots >= kMaxKeyParts)
                throw std::runtime_error(source + ": invalid TOML: line " + std::to_string(line) +
                                         " has a dotted key of more than " + std::to_string(kMaxKeyParts) + " parts");
        } else if (std::isalnum(c) || c == '_' || c == '-' || c == '+' || c == ':' || c == ' ' || c == '\t') {
            // key and value characters (numbers, dates, times) keep the run going
            check_binary_literal(text, i, line, source);
        } else {
            dots = 0;
            if (c == '#') {
                while (i < text.size() && text[i] != '\n') ++i;
                continue;
            }
            if (c == '\n') ++line;
            if (c == '[' || c == '{') {
                if (++depth > kMaxNesting)
                    throw std::runtime_error(source + ": invalid TOML: line " + std::to_string(line) +
                                             " nests arrays or inline tables more than " +
                                             std::to_string(kMaxNesting) + " deep");
            } else if ((c == ']' || c == '}') && depth > 0) {
                --depth;
            }
        }
        ++i;
    }
}

// Throws unless `text` is valid UTF-8, which TOML requires of a whole file.
// toml11 checks strings itself, but its error path for an invalid sequence
// in a '...' or '''...''' string reads past the end of a buffer (toml11 3.7),
// so nothing invalid may reach it.
void check_utf8(const std::string& text, const std::string& source) {
    int64_t line = 1;
    for (size_t i = 0; i < text.size();) {
        const auto byte = [&](size_t k) { return k < text.size() ? static_cast<unsigned char>(text[k]) : 0u; };
        const unsigned c = byte(i);
        size_t len = 0;
        unsigned lo = 0x80, hi = 0xbf;  // range of the second byte
        if (c < 0x80) {
            len = 1;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;  // no overlong forms
            if (c == 0xed) hi = 0x9f;  // no UTF-16 surrogates
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;  // no overlong forms
            if (c == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
        }
        bool ok = len > 0;
        for (size_t k = 1; ok && k < len; ++k) {
            const unsigned b = byte(i + k);
            ok = k == 1 ? b >= lo && b <= hi : b >= 0x80 && b <= 0xbf;
        }
        if (!ok) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", c);
            throw std::runtime_error(source + ": invalid TOML: line " + std::to_string(line) +
                                     " is not valid UTF-8 (byte " + hex + " at offset " + std::to_string(i) + ")");
        }
        if (c == '\n') ++line;
        i += len;
    }
}

// The whole file. The type is checked on the open descriptor, and the open
// itself does not block (O_NONBLOCK), so a FIFO or a device is refused
// instead of waiting for a writer or reading forever.
std::string read_config_file(const std::string& path) {
    const std::string what = "config file '" + path + "'";
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) throw std::runtime_error(what + " not found");
        throw std::runtime_error(what + " cannot be opened: " + std::strerror(errno));
    }
    std::string text;
    struct stat st {};
    int err = 0;
    if (::fstat(fd, &st) != 0) {
        err = errno;
    } else if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw std::runtime_error(what + " is not a regular file");
    } else {
        char buf[1 << 16];
        while (true) {
            const ssize_t got = ::read(fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) err = errno;
            if (got <= 0) break;
            text.append(buf, static_cast<size_t>(got));
        }
    }
    ::close(fd);
    if (err != 0) throw std::runtime_error(what + " cannot be read: " + std::strerror(err));
    return text;
}

toml::value parse_toml(std::istream& in, const std::string& source) {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    check_utf8(text, source);
    check_nesting(text, source);
    std::istringstream text_in(text);
    toml::value root;
    try {
        root = toml::parse(text_in, source);
    } catch (const std::exception& e) {
        throw std::runtime_error(source + ": invalid TOML: " + e.what());
    }
    return root;
}

// Layers `top` (read from file `name`) on `base`: a table merges key by key,
// any other value replaces the one before (noted in `notes` when it differs).
// A key that is a table in one file and a value in the other is an error.
void merge_layer(toml::value& base, const toml::value& top, const std::string& prefix, const std::string& name,
                 std::vector<std::string>& notes) {
    std::map<std::string, const toml::value*> sorted;  // toml11's tables are unordered: notes in key order
    for (const auto& [k, v] : top.as_table()) sorted[k] = &v;
    for (const auto& [k, vp] : sorted) {
        const toml::value& v = *vp;
        const std::string path = prefix.empty() ? k : prefix + "." + k;
        auto& table = base.as_table();
        auto it = table.find(k);
        if (it == table.end()) {
            table.emplace(k, v);
            continue;
        }
        toml::value& old = it->second;
        if (old.is_table() && v.is_table()) {
            merge_layer(old, v, path, name, notes);
            continue;
        }
        if (old.is_table() != v.is_table())
            throw std::runtime_error(name + ": '" + clip(path) + "' (line " + std::to_string(v.location().line()) +
                                     ") is " + clip(describe(v)) + ", but " + old.location().file_name() +
                                     " has it as " + clip(describe(old)));
        if (literal(old) != literal(v))
            notes.push_back(name + " sets " + path + " = " + clip(literal(v)) + " over " + clip(literal(old)) +
                            " from " + old.location().file_name());
        old = v;
    }
}

// Optimal string alignment distance: insertions, deletions, substitutions
// and swaps of neighbours, each 1.
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
        for (size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

// "optim.lr" -> {"optim", "lr"}; a key without a dot has table "".
std::pair<std::string, std::string> table_and_leaf(const std::string& key) {
    const size_t dot = key.rfind('.');
    if (dot == std::string::npos) return {"", key};
    return {key.substr(0, dot), key.substr(dot + 1)};
}

}  // namespace

std::vector<std::string> nearest_keys(const std::string& key, const std::vector<std::string>& known) {
    // Longer than any key of a schema: past this, no suggestion (and no
    // quadratic time on a pasted paragraph).
    constexpr size_t kLongest = 64;
    if (key.size() > kLongest) return {};
    const auto [table, leaf] = table_and_leaf(key);
    const size_t limit = std::clamp<size_t>(key.size() / 4, 2, 3);
    std::vector<std::pair<size_t, std::string>> scored;
    for (const std::string& k : known) {
        if (k == key || k.size() > kLongest) continue;
        const auto [ktable, kleaf] = table_and_leaf(k);
        size_t score = edit_distance(key, k);
        if (ktable != table && leaf.size() >= 3) {
            const size_t d = edit_distance(leaf, kleaf);  // the name right, the table wrong
            if (d <= 1) score = std::min(score, d + 1);
        }
        if (ktable == table && std::min(leaf.size(), kleaf.size()) >= 3 &&
            (kleaf.find(leaf) != std::string::npos || leaf.find(kleaf) != std::string::npos))
            score = std::min<size_t>(score, 2);
        // A short key is near everything short: only a change small against its length counts.
        if (score <= limit && 3 * score <= key.size()) scored.emplace_back(score, k);
    }
    std::sort(scored.begin(), scored.end());
    std::vector<std::string> out;
    for (size_t i = 0; i < scored.size() && i < 3; ++i) out.push_back(scored[i].second);
    return out;
}

namespace {

// " (line 4)" -> " (line 4; did you mean 'a' or 'b'?)".
std::string with_hint(std::string origin, const std::vector<std::string>& near) {
    if (near.empty()) return origin;
    std::string hint = "; did you mean ";
    for (size_t i = 0; i < near.size(); ++i)
        hint += (i == 0 ? "'" : i + 1 == near.size() ? " or '" : ", '") + near[i] + "'";
    origin.insert(origin.size() - 1, hint + "?");
    return origin;
}

}  // namespace

struct ConfigReader::Impl {
    std::string source;
    toml::value root = toml::table{};
    bool layered = false;                              // several files: messages name the file of a key
    std::vector<std::string> notes;                    // layer_notes()
    std::map<std::string, std::string> override_text;  // key -> "key=value" as given
    std::map<std::string, std::string> used;           // key read -> TOML literal of the value used
    std::set<std::string> asked;                       // keys has() was asked about: known names too

    // Where a value came from, for messages.
    std::string origin(const std::string& key, const toml::value& v) const {
        auto it = override_text.find(key);
        if (it != override_text.end()) return " (from override '" + clip(it->second) + "')";
        if (layered) return " (" + v.location().file_name() + ", line " + std::to_string(v.location().line()) + ")";
        return " (line " + std::to_string(v.location().line()) + ")";
    }

    [[noreturn]] void bad_value(const std::string& key, const toml::value& v, const std::string& expected) const {
        throw std::runtime_error(source + ": key '" + key + "'" + origin(key, v) + " must be " + expected + ", got " +
                                 clip(describe(v)));
    }

    // The value at `key`, or nullptr when absent.
    const toml::value* find(const std::string& key) const {
        auto parts = split_key(key);
        if (!parts) throw std::logic_error("config schema: invalid key '" + key + "'");
        const toml::value* v = &root;
        std::string path;
        for (const std::string& p : *parts) {
            if (!v->is_table())
                throw std::runtime_error(source + ": key '" + key + "' needs '" + path + "' to be a table, but it is " +
                                         describe(*v));
            auto it = v->as_table().find(p);
            if (it == v->as_table().end()) return nullptr;
            v = &it->second;
            path += (path.empty() ? "" : ".") + p;
        }
        return v;
    }

    void apply_override(const std::string& text) {
        const std::string where = source + ": override '" + clip(text) + "'";
        size_t eq = text.find('=');
        if (eq == std::string::npos) throw std::runtime_error(where + " must look like section.key=value");
        const std::string key = trim(text.substr(0, eq)), value = trim(text.substr(eq + 1));
        auto parts = split_key(key);
        if (!parts) throw std::runtime_error(where + ": '" + clip(key) + "' is not a dotted key of [A-Za-z0-9_-] names");
        if (value.empty())
            throw std::runtime_error(where + " has no value (write " + clip(key) + "=\"\" for an empty string)");

        if (parts->size() > static_cast<size_t>(kMaxKeyParts))
            throw std::runtime_error(where + ": the key has more than " + std::to_string(kMaxKeyParts) + " parts");
        check_utf8(value, where);
        check_nesting(value, where);
        toml::value parsed;
        std::istringstream in("v = " + value);
        try {
            toml::value t = toml::parse(in, "override");
            if (t.as_table().size() != 1) throw std::runtime_error(where + ": the value must be a single TOML value");
            parsed = t.as_table().at("v");
        } catch (const toml::exception&) {
            parsed = toml::value(value);  // not TOML: a bare string
        }

        toml::value* t = &root;
        std::string path;
        for (size_t i = 0; i + 1 < parts->size(); ++i) {
            const std::string& p = (*parts)[i];
            path += (path.empty() ? "" : ".") + p;
            auto& table = t->as_table();
            auto it = table.find(p);
            if (it == table.end()) it = table.emplace(p, toml::table{}).first;
            if (!it->second.is_table())
                throw std::runtime_error(where + ": '" + clip(path) + "' is " + clip(describe(it->second)) +
                                         ", not a table");
            t = &it->second;
        }
        auto& table = t->as_table();
        auto it = table.find(parts->back());
        if (it != table.end() && it->second.is_table())
            throw std::runtime_error(where + " would replace the table '" + clip(key) + "'");
        table[parts->back()] = parsed;
        override_text[key] = text;
    }

    // Every key set in the file or by an override (empty tables count too).
    void leaves(const toml::value& t, const std::string& prefix,
                std::vector<std::pair<std::string, const toml::value*>>& out) const {
        std::map<std::string, const toml::value*> sorted;
        for (const auto& [k, v] : t.as_table()) sorted[k] = &v;
        for (const auto& [k, v] : sorted) {
            std::string path = prefix.empty() ? k : prefix + "." + k;
            if (v->is_table() && !v->as_table().empty())
                leaves(*v, path, out);
            else
                out.emplace_back(path, v);
        }
    }
};

ConfigReader::ConfigReader() : impl_(std::make_unique<Impl>()) {}
ConfigReader::ConfigReader(ConfigReader&&) noexcept = default;
ConfigReader& ConfigReader::operator=(ConfigReader&&) noexcept = default;
ConfigReader::~ConfigReader() = default;

ConfigReader::ConfigReader(const std::string& path, const std::vector<std::string>& overrides) : ConfigReader() {
    impl_->source = path;
    std::istringstream in(read_config_file(path));
    impl_->root = parse_toml(in, path);
    for (const std::string& o : overrides) impl_->apply_override(o);
}

ConfigReader::ConfigReader(const std::vector<std::string>& paths, const std::vector<std::string>& overrides)
    : ConfigReader() {
    if (paths.empty()) throw std::logic_error("ConfigReader: no config file to read");
    impl_->layered = paths.size() > 1;
    for (size_t i = 0; i < paths.size(); ++i) {
        impl_->source += (i ? " + " : "") + paths[i];
        std::istringstream in(read_config_file(paths[i]));
        toml::value layer = parse_toml(in, paths[i]);
        if (i == 0) impl_->root = std::move(layer);
        else merge_layer(impl_->root, layer, "", paths[i], impl_->notes);
    }
    for (const std::string& o : overrides) impl_->apply_override(o);
}

ConfigReader ConfigReader::from_string(const std::string& toml_text, const std::string& source_name,
                                       const std::vector<std::string>& overrides) {
    ConfigReader c;
    c.impl_->source = source_name;
    std::istringstream in(toml_text);
    c.impl_->root = parse_toml(in, source_name);
    for (const std::string& o : overrides) c.impl_->apply_override(o);
    return c;
}

double ConfigReader::get_double(const std::string& key, double def, double lo, double hi) {
    if (!(lo <= def && def <= hi))
        throw std::logic_error("config schema: default " + number_text(def) + " of '" + key + "' is outside " +
                               range_text(lo, hi));
    double x = def;
    if (const toml::value* v = impl_->find(key)) {
        auto num = as_number(*v);
        if (!num || !(lo <= *num && *num <= hi)) impl_->bad_value(key, *v, "a number in " + range_text(lo, hi));
        x = *num;
    }
    impl_->used[key] = float_literal(x);
    return x;
}

int64_t ConfigReader::get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
    if (def < lo || def > hi)
        throw std::logic_error("config schema: default " + std::to_string(def) + " of '" + key + "' is outside " +
                               range_text(lo, hi));
    int64_t x = def;
    if (const toml::value* v = impl_->find(key)) {
        if (!v->is_integer() || !integer_literal_fits(*v) || v->as_integer() < lo || v->as_integer() > hi)
            impl_->bad_value(key, *v, "an integer in " + range_text(lo, hi));
        x = v->as_integer();
    }
    impl_->used[key] = std::to_string(x);
    return x;
}

bool ConfigReader::get_bool(const std::string& key, bool def) {
    bool x = def;
    if (const toml::value* v = impl_->find(key)) {
        if (!v->is_boolean()) impl_->bad_value(key, *v, "a boolean (true or false)");
        x = v->as_boolean();
    }
    impl_->used[key] = x ? "true" : "false";
    return x;
}

std::string ConfigReader::get_string(const std::string& key, const std::string& def,
                                     const std::vector<std::string>& allowed) {
    auto ok = [&](const std::string& s) {
        return allowed.empty() || std::find(allowed.begin(), allowed.end(), s) != allowed.end();
    };
    std::string expected = "a string";
    if (!allowed.empty()) {
        expected = "one of";
        for (size_t i = 0; i < allowed.size(); ++i) expected += (i ? ", " : " ") + string_literal(allowed[i]);
    }
    if (!ok(def)) throw std::logic_error("config schema: default \"" + def + "\" of '" + key + "' is not " + expected);
    std::string x = def;
    if (const toml::value* v = impl_->find(key)) {
        if (!v->is_string() || !ok(v->as_string().str)) impl_->bad_value(key, *v, expected);
        x = v->as_string().str;
    }
    impl_->used[key] = string_literal(x);
    return x;
}

std::vector<int64_t> ConfigReader::get_int_list(const std::string& key, const std::vector<int64_t>& def, int64_t lo,
                                                int64_t hi) {
    for (int64_t d : def)
        if (d < lo || d > hi)
            throw std::logic_error("config schema: default of '" + key + "' is outside " + range_text(lo, hi));
    std::vector<int64_t> x = def;
    if (const toml::value* v = impl_->find(key)) {
        const std::string expected = "an array of integers in " + range_text(lo, hi);
        if (!v->is_array()) impl_->bad_value(key, *v, expected);
        x.clear();
        for (const toml::value& e : v->as_array()) {
            if (!e.is_integer() || !integer_literal_fits(e) || e.as_integer() < lo || e.as_integer() > hi)
                impl_->bad_value(key, *v, expected);
            x.push_back(e.as_integer());
        }
    }
    std::string lit = "[";
    for (size_t i = 0; i < x.size(); ++i) lit += (i ? ", " : "") + std::to_string(x[i]);
    impl_->used[key] = lit + "]";
    return x;
}

std::vector<double> ConfigReader::get_double_list(const std::string& key, const std::vector<double>& def, double lo,
                                                  double hi) {
    for (double d : def)
        if (!(lo <= d && d <= hi))
            throw std::logic_error("config schema: default of '" + key + "' is outside " + range_text(lo, hi));
    std::vector<double> x = def;
    if (const toml::value* v = impl_->find(key)) {
        const std::string expected = "an array of numbers in " + range_text(lo, hi);
        if (!v->is_array()) impl_->bad_value(key, *v, expected);
        x.clear();
        for (const toml::value& e : v->as_array()) {
            auto num = as_number(e);
            if (!num || !(lo <= *num && *num <= hi)) impl_->bad_value(key, *v, expected);
            x.push_back(*num);
        }
    }
    std::string lit = "[";
    for (size_t i = 0; i < x.size(); ++i) lit += (i ? ", " : "") + float_literal(x[i]);
    impl_->used[key] = lit + "]";
    return x;
}

bool ConfigReader::has(const std::string& key) const {
    impl_->asked.insert(key);
    return impl_->find(key) != nullptr;
}

void ConfigReader::check_no_unknown_keys() const {
    std::vector<std::pair<std::string, const toml::value*>> all;
    impl_->leaves(impl_->root, "", all);
    std::vector<std::pair<std::string, const toml::value*>> unknown;
    for (const auto& [key, v] : all) {
        // An empty table is fine when the schema reads any key inside it.
        bool known = v->is_table() ? impl_->used.lower_bound(key + ".") != impl_->used.lower_bound(key + "/")
                                   : impl_->used.count(key) > 0;
        if (!known) unknown.emplace_back(key, v);
    }
    if (unknown.empty()) return;
    // Only the first few are listed with their origin: toml11 finds a value's
    // line by counting the newlines before it, so a line for each of 100,000
    // unknown keys took minutes (and made a message of megabytes).
    constexpr size_t kListed = 10;
    std::string msg =
        impl_->source + ": unknown key" + (unknown.size() > 1 ? "s" : "") + " (not part of the schema): ";
    std::vector<std::string> known(impl_->asked.begin(), impl_->asked.end());
    for (const auto& [key, lit] : impl_->used) known.push_back(key);
    for (size_t i = 0; i < unknown.size() && i < kListed; ++i)
        msg += (i ? ", '" : "'") + unknown[i].first + "'" +
               with_hint(impl_->origin(unknown[i].first, *unknown[i].second), nearest_keys(unknown[i].first, known));
    if (unknown.size() > kListed) msg += ", and " + std::to_string(unknown.size() - kListed) + " more";
    throw std::runtime_error(msg);
}

std::string ConfigReader::dump_toml() const {
    // Group "a.b.c" under the table [a.b]; top-level keys must come first.
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> tables;
    for (const auto& [key, lit] : impl_->used) {
        auto parts = *split_key(key);
        std::string table;
        for (size_t i = 0; i + 1 < parts.size(); ++i) table += (i ? "." : "") + parts[i];
        tables[table].emplace_back(parts.back(), lit);
    }
    std::string out;
    for (const auto& [table, keys] : tables) {
        if (!table.empty()) out += (out.empty() ? "[" : "\n[") + table + "]\n";
        for (const auto& [k, lit] : keys) out += k + " = " + lit + "\n";
    }
    return out;
}

const std::string& ConfigReader::source() const { return impl_->source; }

const std::vector<std::string>& ConfigReader::layer_notes() const { return impl_->notes; }

void check_overrides_distinct(const std::vector<std::string>& overrides) {
    std::map<std::string, const std::string*> seen;  // key -> the override that set it
    for (const std::string& o : overrides) {
        const size_t eq = o.find('=');
        if (eq == std::string::npos) continue;  // ConfigReader says what is wrong with it
        auto [it, fresh] = seen.emplace(trim(o.substr(0, eq)), &o);
        if (!fresh)
            throw std::runtime_error("--set '" + clip(o) + "': '" + clip(it->first) + "' is already set by --set '" +
                                     clip(*it->second) + "'; give each key once");
    }
}

}  // namespace miras
