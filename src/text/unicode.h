// Unicode helpers for the tokenizer (torch-free): UTF-8 decoding/encoding, Rust-compatible lossy
// decoding, White_Space, NFC/NFD normalization (tables in unicode_data.cpp) and the GPT-2
// byte-level alphabet. Strings are UTF-8 std::string throughout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lota::text {

/// Decodes the code point at s[i] and advances i. Invalid UTF-8 yields U+FFFD and advances one byte.
char32_t utf8_next(const std::string& s, size_t& i);
/// Appends the UTF-8 encoding of cp.
void utf8_append(std::string& out, char32_t cp);
/// Length in bytes of the UTF-8 sequence starting with lead byte b (1 for invalid leads).
size_t utf8_len(unsigned char b);
/// Byte offset of the first invalid UTF-8 sequence, or std::string::npos when s is valid.
size_t utf8_invalid_at(const std::string& s);
/// Decodes bytes as UTF-8 replacing each maximal invalid subpart by U+FFFD, exactly like Rust's
/// String::from_utf8_lossy (which HF decoders use).
std::string utf8_lossy(const std::string& bytes);

/// Unicode White_Space property (Rust char::is_whitespace, regex \s).
bool is_white_space(char32_t cp);

/// Canonical composition (NFC) and decomposition (NFD) of valid UTF-8 text.
std::string nfc(const std::string& s);
std::string nfd(const std::string& s);

/// GPT-2 byte-level alphabet: the UTF-8 text of the printable character standing for byte b.
const std::string& byte_level_char(unsigned char b);
/// Inverse of byte_level_char for one code point; -1 when cp is not in the alphabet.
int byte_level_byte(char32_t cp);

namespace detail {
extern const char* const k_decomposition_data;
extern const char* const k_combining_class_data;
}  // namespace detail

}  // namespace lota::text
