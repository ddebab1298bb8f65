// Fine-tuning dataset files → prompt/target text pairs. Formats:
//   alpaca  JSON list of {instruction, input, output}; source = instruction (+ "\n\n" + input)
//   gsm8k   JSONL {question, answer}
//   chat    JSONL {messages: [...]}; the last message must be the assistant's (the target), the
//           earlier ones are the prompt (as ../shared/data/sql)
//   viggo   CSV with header mr,ref; the model writes the meaning representation (mr) for a
//           sentence (ref), prompted with the ViGGO instruction (viggo_instruction())
//   text    plain text, no pairs (data.h cuts it into causal-LM windows)
// Every reader bounds what it accepts and names the file and line/record of a bad entry.
// Not here: tokenization, chat templates, batching (data/examples.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lota::data {

enum class DataFormat { ALPACA, GSM8K, CHAT, VIGGO, TEXT };

/// "alpaca" | "gsm8k" | "chat" | "viggo" | "text"; throws listing the known names otherwise.
DataFormat data_format_from_name(const std::string& name);

/// One supervised example: prompt messages (user/system turns, no assistant answer) and the target.
struct TextPair {
    nlohmann::json prompt = nlohmann::json::array();  ///< [{"role", "content"}...]
    std::string target;
};

/// Reads `path` in `format` (not TEXT). A system message "" is prepended when the prompt has none.
std::vector<TextPair> data_read_pairs(const std::string& path, DataFormat format);

/// The instruction ViGGO examples are prompted with (the paper's task: sentence → function(attrs)).
const std::string& viggo_instruction();

/// Parses RFC 4180 CSV text (quoted fields, "" escapes, CRLF or LF) into rows of fields.
std::vector<std::vector<std::string>> csv_parse(const std::string& text, const std::string& file);

}  // namespace lota::data
