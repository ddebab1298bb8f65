// Python str operations on UTF-8 (see jinja_strings.h). Case mapping is exact for the code points
// case_handled() accepts and refused (lota::Error) for other cased letters.
#include "text/jinja_strings.h"

#include <cstdio>

#include "text/jinja_limits.h"
#include "util/check.h"

namespace lota::text::jinja {

std::u32string utf8_decode(const std::string& s) {
    std::u32string out;
    out.reserve(s.size());
    size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + static_cast<size_t>(len) <= n;
        char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (int k = 1; ok && k < len; ++k) {
            unsigned char cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
            ok = (cc & 0xC0) == 0x80;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (!ok) {
            out.push_back(c);
            ++i;
        } else {
            out.push_back(cp);
            i += static_cast<size_t>(len);
        }
    }
    return out;
}

std::string utf8_encode(const std::u32string& s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

bool py_isspace(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right) {
    std::u32string u = utf8_decode(s), set;
    if (chars) set = utf8_decode(*chars);
    auto strip_me = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : py_isspace(c); };
    size_t b = 0, e = u.size();
    if (left)
        while (b < e && strip_me(u[b])) ++b;
    if (right)
        while (e > b && strip_me(u[e - 1])) --e;
    return utf8_encode(u.substr(b, e - b));
}

static std::vector<std::string> split_whitespace(const std::string& s, int64_t maxsplit, bool from_right) {
    std::u32string u = utf8_decode(s);
    std::vector<std::u32string> parts;
    if (!from_right) {
        size_t i = 0, n = u.size();
        while (true) {
            while (i < n && py_isspace(u[i])) ++i;
            if (i >= n) break;
            if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
                size_t e = n;
                while (e > i && py_isspace(u[e - 1])) --e;
                parts.push_back(u.substr(i, e - i));
                break;
            }
            size_t j = i;
            while (j < n && !py_isspace(u[j])) ++j;
            parts.push_back(u.substr(i, j - i));
            i = j;
        }
    } else {
        size_t e = u.size();
        while (true) {
            while (e > 0 && py_isspace(u[e - 1])) --e;
            if (e == 0) break;
            if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
                size_t b = 0;
                while (b < e && py_isspace(u[b])) ++b;
                parts.push_back(u.substr(b, e - b));
                break;
            }
            size_t j = e;
            while (j > 0 && !py_isspace(u[j - 1])) --j;
            parts.push_back(u.substr(j, e - j));
            e = j;
        }
        std::vector<std::u32string> rev(parts.rbegin(), parts.rend());
        parts.swap(rev);
    }
    std::vector<std::string> out;
    for (const auto& p : parts) out.push_back(utf8_encode(p));
    return out;
}

std::vector<std::string> py_split(const std::string& s, const std::string* sep, int64_t maxsplit, bool from_right) {
    if (!sep) return split_whitespace(s, maxsplit, from_right);
    std::vector<std::string> out;
    if (sep->empty()) return out;  // caller rejects an empty separator (Python raises)
    if (!from_right) {
        size_t start = 0;
        while (true) {
            size_t p = s.find(*sep, start);
            if (p == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit)) break;
            out.push_back(s.substr(start, p - start));
            start = p + sep->size();
        }
        out.push_back(s.substr(start));
        return out;
    }
    size_t end = s.size();
    std::vector<std::string> rev;
    while (true) {
        if (maxsplit >= 0 && static_cast<int64_t>(rev.size()) == maxsplit) break;
        if (end < sep->size()) break;
        size_t p = s.rfind(*sep, end - sep->size());
        if (p == std::string::npos) break;
        rev.push_back(s.substr(p + sep->size(), end - p - sep->size()));
        end = p;
    }
    rev.push_back(s.substr(0, end));
    return std::vector<std::string>(rev.rbegin(), rev.rend());
}

std::string py_replace(const std::string& s, const std::string& old_s, const std::string& new_s, int64_t count,
                       int line) {
    std::string out;
    if (old_s.empty()) {  // Python inserts `new` around every code point
        std::u32string u = utf8_decode(s);
        int64_t done = 0;
        for (size_t i = 0; i <= u.size(); ++i) {
            if (count < 0 || done < count) {
                out += new_s;
                ++done;
                check_text_size(out.size(), line);
            }
            if (i < u.size()) out += utf8_encode(std::u32string(1, u[i]));
        }
        return out;
    }
    size_t start = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        size_t p = s.find(old_s, start);
        if (p == std::string::npos) break;
        out += s.substr(start, p - start) + new_s;
        check_text_size(out.size(), line);
        start = p + old_s.size();
        ++done;
    }
    return out + s.substr(start);
}

// Simple one-to-one case pairs; returns c unchanged when it has no mapping.
static char32_t to_upper_cp(char32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x178 &&
        c != 0x17F) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_lower ? (c % 2 == 0) : (c % 2 == 1)) return c - 1;
        return c;
    }
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

static char32_t to_lower_cp(char32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x178 &&
        c != 0x17F) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_lower ? (c % 2 == 1) : (c % 2 == 0)) return c + 1;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static bool is_cased(char32_t c) {
    return to_upper_cp(c) != c || to_lower_cp(c) != c || c == 0xDF || c == 0xAA || c == 0xBA || c == 0x138;
}

// Blocks holding letters with case (Python 3.11 unicodedata 14.0; gaps of <= 48 code points merged).
static const char32_t kCasedBlocks[][2] = {
    {0x41, 0x7A},       {0xB5, 0x2AF},      {0x345, 0x588},     {0x10A0, 0x10FF},   {0x13A0, 0x13FD},
    {0x1C80, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D9A},   {0x1E00, 0x1FFC},   {0x2102, 0x2184},
    {0x24B6, 0x24E9},   {0x2C00, 0x2D2D},   {0xA640, 0xA69B},   {0xA722, 0xA7FA},   {0xAB30, 0xABBF},
    {0xFB00, 0xFB17},   {0xFF21, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104FB}, {0x10570, 0x105BC},
    {0x10C80, 0x10CF2}, {0x118A0, 0x118DF}, {0x16E40, 0x16E7F}, {0x1D400, 0x1D7CB}, {0x1DF00, 0x1DF1E},
    {0x1E900, 0x1E943}};

// The code points whose case mapping here equals Python's (checked exhaustively by
// tests/py/test_chat_template.py); others in cased blocks are refused rather than mapped wrongly.
static bool case_handled(char32_t c, bool titling) {
    if (c < 0x180) return c != 0x130 && c != 0x131 && c != 0x149 && c != 0x17F && !(titling && c == 0xDF);
    if ((c >= 0x391 && c <= 0x3A9 && c != 0x3A2 && c != 0x3A3) || (c >= 0x3B1 && c <= 0x3C9)) return true;
    if (c >= 0x400 && c <= 0x45F) return true;
    for (const auto& r : kCasedBlocks)
        if (c >= r[0] && c <= r[1]) return false;
    return true;  // no case
}

static void check_case(const std::u32string& u, bool titling) {
    for (char32_t c : u)
        if (!case_handled(c, titling))
            LOTA_FAIL("chat template: unsupported: changing the case of U+%04X", static_cast<unsigned>(c));
}

static std::string map_case(const std::string& s, bool upper) {
    std::u32string u = utf8_decode(s), out;
    check_case(u, false);
    for (char32_t c : u) {
        if (upper && c == 0xDF) {
            out += U"SS";
        } else {
            out.push_back(upper ? to_upper_cp(c) : to_lower_cp(c));
        }
    }
    return utf8_encode(out);
}

std::string py_upper(const std::string& s) { return map_case(s, true); }
std::string py_lower(const std::string& s) { return map_case(s, false); }

std::string py_title(const std::string& s) {
    std::u32string u = utf8_decode(s), out;
    check_case(u, true);
    bool prev_cased = false;
    for (char32_t c : u) {
        out.push_back(prev_cased ? to_lower_cp(c) : to_upper_cp(c));
        prev_cased = is_cased(c);
    }
    return utf8_encode(out);
}

std::string py_capitalize(const std::string& s) {
    std::u32string u = utf8_decode(s);
    check_case(u, true);
    for (size_t i = 0; i < u.size(); ++i) u[i] = i == 0 ? to_upper_cp(u[i]) : to_lower_cp(u[i]);
    return utf8_encode(u);
}

static bool py_printable(char32_t c) {
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0xA0) || c == 0xAD) return false;
    if (c >= 0x2000 && c <= 0x200F) return false;
    if ((c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F)) return false;
    if (c == 0x1680 || c == 0x3000 || c == 0xFEFF || (c >= 0xD800 && c <= 0xF8FF)) return false;
    return true;
}

std::string py_string_repr(const std::string& s) {
    char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::u32string out;
    out.push_back(static_cast<char32_t>(q));
    char buf[16];
    for (char32_t c : utf8_decode(s)) {
        if (c == static_cast<char32_t>(q) || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out += U"\\n";
        } else if (c == '\r') {
            out += U"\\r";
        } else if (c == '\t') {
            out += U"\\t";
        } else if (!py_printable(c)) {
            std::snprintf(buf, sizeof buf, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x",
                          static_cast<unsigned>(c));
            for (const char* p = buf; *p; ++p) out.push_back(static_cast<char32_t>(*p));
        } else {
            out.push_back(c);
        }
    }
    out.push_back(static_cast<char32_t>(q));
    return utf8_encode(out);
}

std::string json_string(const std::string& s, bool ensure_ascii) {
    std::string out = "\"";
    char buf[16];
    for (char32_t c : utf8_decode(s)) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
                    if (c >= 0x10000) {  // surrogate pair, as json.dumps(ensure_ascii=True)
                        char32_t v = c - 0x10000;
                        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
                    } else {
                        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    }
                    out += buf;
                } else {
                    out += utf8_encode(std::u32string(1, c));
                }
        }
    }
    return out + "\"";
}

}  // namespace lota::text::jinja
