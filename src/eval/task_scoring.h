// Answer rules of the generation tasks (GSM8K, SQL, ViGGO): pure string functions, no model.
// They follow the official LoTA-QAF evaluation (evalGSV.py `is_correct`, itself HALO's test code):
// prediction and reference are compared after stripping surrounding whitespace, and
//   GSM8K  the text after the last "####" must be equal. lota also drops thousands commas
//          ("1,000" == "1000"), which the official rule does not; nothing else is normalised, so
//          "18.0" != "18" and "$18" != "18". A prediction without "####" is wrong (the official
//          code would compare the whole text).
//   SQL    exact string match: any difference inside, whitespace included, is wrong.
//   ViGGO  `function(attr[value], attr[value], ...)`: same function name and the same set of
//          attributes, where an attribute is its name AND value (the official code sorts and
//          compares the whole "attr[value]" items), in any order. lota parses the brackets, so a
//          comma inside a value does not split it; whitespace around names and values is ignored.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lota::eval {

/// `text` without leading and trailing whitespace, as Python's str.strip() (the official code's).
std::string text_strip(const std::string& text);

/// GSM8K final answer: the stripped text after the last "####" with commas between digits
/// removed; nullopt when `text` has no "####".
std::optional<std::string> gsm8k_answer(const std::string& text);
/// True when both have a final answer and they are equal (see the file comment).
bool gsm8k_correct(const std::string& prediction, const std::string& reference);

/// Exact match after stripping surrounding whitespace.
bool sql_correct(const std::string& prediction, const std::string& reference);

/// A parsed ViGGO meaning representation.
struct ViggoMr {
    std::string function;
    std::vector<std::pair<std::string, std::string>> attributes;  ///< (name, value), in text order
};

/// Parses `function(attr[value], ...)` (surrounding whitespace allowed, nothing after the ")");
/// nullopt when the text does not have that form.
std::optional<ViggoMr> viggo_parse(const std::string& text);
/// Same function and the same multiset of (name, value) attributes; false if either is malformed.
bool viggo_correct(const std::string& prediction, const std::string& reference);

}  // namespace lota::eval
