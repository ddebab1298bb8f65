// Unicode helpers for the tokenizer (see unicode.h). NFC follows UAX #15: full canonical
// decomposition (Hangul algorithmically), canonical ordering by combining class, then
// canonical composition of unblocked pairs that are not composition exclusions.
#include "text/unicode.h"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lota::text {
namespace {

constexpr char32_t k_replacement = 0xFFFD;
constexpr char32_t k_s_base = 0xAC00, k_l_base = 0x1100, k_v_base = 0x1161, k_t_base = 0x11A7;
constexpr char32_t k_l_count = 19, k_v_count = 21, k_t_count = 28;
constexpr char32_t k_n_count = k_v_count * k_t_count, k_s_count = k_l_count * k_n_count;

struct CombiningRange {
    char32_t start, end;
    uint8_t ccc;
};

struct NormTables {
    std::unordered_map<char32_t, std::pair<char32_t, char32_t>> decomp;  // second 0: singleton
    std::unordered_map<uint64_t, char32_t> compose;                      // (first<<21|second)
    std::vector<CombiningRange> ccc;
};

// Parses "a,b,c;..." records of hex fields.
template <size_t N, typename F>
void parse_records(const char* data, F&& on_record) {
    std::array<uint32_t, N> fields{};
    size_t k = 0;
    uint32_t v = 0;
    for (const char* p = data; *p; ++p) {
        char c = *p;
        if (c == ',' || c == ';') {
            fields[k++] = v;
            v = 0;
            if (c == ';') {
                on_record(fields);
                k = 0;
            }
        } else {
            v = v * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        }
    }
}

const NormTables& norm_tables() {
    static const NormTables tables = [] {
        NormTables t;
        parse_records<4>(detail::k_decomposition_data, [&](const std::array<uint32_t, 4>& f) {
            t.decomp[f[0]] = {f[1], f[2]};
            if (f[3] == 0) t.compose[(uint64_t(f[1]) << 21) | f[2]] = f[0];
        });
        parse_records<3>(detail::k_combining_class_data, [&](const std::array<uint32_t, 3>& f) {
            t.ccc.push_back({f[0], f[1], static_cast<uint8_t>(f[2])});
        });
        return t;
    }();
    return tables;
}

uint8_t combining_class(char32_t cp) {
    if (cp < 0x300) return 0;
    const auto& r = norm_tables().ccc;
    auto it = std::upper_bound(r.begin(), r.end(), cp,
                               [](char32_t c, const CombiningRange& x) { return c < x.start; });
    if (it == r.begin()) return 0;
    --it;
    return cp <= it->end ? it->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
    if (cp >= k_s_base && cp < k_s_base + k_s_count) {
        char32_t s = cp - k_s_base;
        out.push_back(k_l_base + s / k_n_count);
        out.push_back(k_v_base + (s % k_n_count) / k_t_count);
        if (s % k_t_count) out.push_back(k_t_base + s % k_t_count);
        return;
    }
    const auto& d = norm_tables().decomp;
    auto it = cp < 0xC0 ? d.end() : d.find(cp);
    if (it == d.end()) {
        out.push_back(cp);
        return;
    }
    decompose(it->second.first, out);
    if (it->second.second) decompose(it->second.second, out);
}

char32_t compose_pair(char32_t a, char32_t b) {
    if (a >= k_l_base && a < k_l_base + k_l_count && b >= k_v_base && b < k_v_base + k_v_count)
        return k_s_base + ((a - k_l_base) * k_v_count + (b - k_v_base)) * k_t_count;
    if (a >= k_s_base && a < k_s_base + k_s_count && (a - k_s_base) % k_t_count == 0 && b > k_t_base &&
        b < k_t_base + k_t_count)
        return a + (b - k_t_base);
    const auto& c = norm_tables().compose;
    auto it = c.find((uint64_t(a) << 21) | b);
    return it == c.end() ? 0 : it->second;
}

// Full canonical decomposition plus canonical ordering.
std::vector<char32_t> nfd_codepoints(const std::string& s) {
    std::vector<char32_t> cps;
    cps.reserve(s.size());
    for (size_t i = 0; i < s.size();) decompose(utf8_next(s, i), cps);
    // Stable sort of each run of non-starters by combining class.
    for (size_t i = 0; i < cps.size();) {
        if (combining_class(cps[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
        std::stable_sort(cps.begin() + i, cps.begin() + j,
                         [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
        i = j;
    }
    return cps;
}

// Whether every byte is below `limit`: code points below U+0300 (lead bytes below 0xCC) are NFC
// stable; those below U+00C0 (bytes below 0xC3) are NFD stable too.
bool all_bytes_below(const std::string& s, unsigned char limit) {
    for (unsigned char c : s)
        if (c >= limit) return false;
    return true;
}

std::string encode_all(const std::vector<char32_t>& cps) {
    std::string out;
    out.reserve(cps.size() * 2);
    for (char32_t c : cps) utf8_append(out, c);
    return out;
}

struct ByteLevelTables {
    std::array<std::string, 256> chars;
    std::unordered_map<char32_t, int> bytes;
};

const ByteLevelTables& byte_level_tables() {
    static const ByteLevelTables tables = [] {
        ByteLevelTables t;
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            char32_t cp = printable ? static_cast<char32_t>(b) : next++;
            utf8_append(t.chars[b], cp);
            t.bytes[cp] = b;
        }
        return t;
    }();
    return tables;
}

}  // namespace

size_t utf8_len(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 1;
}

// Length of the valid sequence at s[i], or 0 and the length of the maximal invalid subpart.
static size_t utf8_valid_len(const std::string& s, size_t i, size_t& bad_len) {
    auto b0 = static_cast<unsigned char>(s[i]);
    bad_len = 1;
    if (b0 < 0x80) return 1;
    size_t n = utf8_len(b0);
    if (n == 1) return 0;
    for (size_t k = 1; k < n; ++k) {
        if (i + k >= s.size()) return 0;
        auto b = static_cast<unsigned char>(s[i + k]);
        unsigned char lo = 0x80, hi = 0xBF;
        if (k == 1) {
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;
        }
        if (b < lo || b > hi) return 0;
        bad_len = k + 1;
    }
    return n;
}

char32_t utf8_next(const std::string& s, size_t& i) {
    size_t bad = 0;
    size_t n = utf8_valid_len(s, i, bad);
    if (n == 0) {
        ++i;
        return k_replacement;
    }
    auto b0 = static_cast<unsigned char>(s[i]);
    char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += n;
    return cp;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

size_t utf8_invalid_at(const std::string& s) {
    for (size_t i = 0, bad = 0; i < s.size();) {
        size_t n = utf8_valid_len(s, i, bad);
        if (n == 0) return i;
        i += n;
    }
    return std::string::npos;
}

std::string utf8_lossy(const std::string& bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (size_t i = 0, bad = 0; i < bytes.size();) {
        size_t n = utf8_valid_len(bytes, i, bad);
        if (n == 0) {
            utf8_append(out, k_replacement);
            i += bad;
        } else {
            out.append(bytes, i, n);
            i += n;
        }
    }
    return out;
}

bool is_white_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

std::string nfd(const std::string& s) {
    if (all_bytes_below(s, 0xC3)) return s;
    return encode_all(nfd_codepoints(s));
}

std::string nfc(const std::string& s) {
    if (all_bytes_below(s, 0xCC)) return s;
    std::vector<char32_t> cps = nfd_codepoints(s);
    std::vector<char32_t> out;
    out.reserve(cps.size());
    size_t starter = 0;
    bool have_starter = false;
    int last_class = -1;
    for (char32_t c : cps) {
        int cls = combining_class(c);
        if (have_starter && (last_class < cls || last_class == 0)) {
            // last_class == 0 here means c directly follows the starter.
            if (char32_t comp = compose_pair(out[starter], c)) {
                out[starter] = comp;
                continue;
            }
        }
        if (cls == 0) {
            starter = out.size();
            have_starter = true;
        }
        last_class = cls;
        out.push_back(c);
    }
    return encode_all(out);
}

const std::string& byte_level_char(unsigned char b) { return byte_level_tables().chars[b]; }

int byte_level_byte(char32_t cp) {
    const auto& m = byte_level_tables().bytes;
    auto it = m.find(cp);
    return it == m.end() ? -1 : it->second;
}

}  // namespace lota::text
