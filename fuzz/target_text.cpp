// Fuzz targets for the torch-free text parsers: tokenizer.json (+ tokenizer_config.json) and
// chat templates. See targets.h.
#include <string>
#include <vector>

#include "targets.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::fuzz {
namespace {

// Splits an input at its first NUL: the main file, then an optional second one.
std::pair<std::string, std::string> split_at_nul(const uint8_t* data, size_t size) {
    std::string all(reinterpret_cast<const char*>(data), size);
    size_t nul = all.find('\0');
    if (nul == std::string::npos) return {all, ""};
    return {all.substr(0, nul), all.substr(nul + 1)};
}

const char* const kSampleTexts[] = {
    "Hello world! It's 2025: naïve café, 東京, emoji 🙂.\n\tTabs  and   spaces",
    "<|im_start|>user\nHi<|im_end|><s></s> [INST] 12345 67 ▁x",
    "",
};

const char* const kDefaultMessages = R"J([
  {"role": "system", "content": "You are helpful."},
  {"role": "user", "content": "What is 2+2?"},
  {"role": "assistant", "content": "4", "reasoning_content": "add",
   "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
  {"role": "tool", "content": "{\"sum\": 4}"},
  {"role": "user", "content": [{"type": "text", "text": "thanks"}]}
])J";

}  // namespace

void fuzz_tokenizer(const uint8_t* data, size_t size) {
    auto [tokenizer_json, config_json] = split_at_nul(data, size);
    try {
        text::Tokenizer tok = text::Tokenizer::from_json_text(tokenizer_json, config_json, "fuzz");
        for (const char* t : kSampleTexts) {
            std::vector<int32_t> ids = tok.encode(t, true);
            tok.decode(ids, false);
            tok.decode(ids, true);
        }
        std::vector<int32_t> ids;
        for (int32_t id = -2; id < 40; ++id) ids.push_back(id);
        ids.push_back(static_cast<int32_t>(tok.vocab_size()));
        ids.push_back(INT32_MAX);
        tok.decode(ids, false);
        tok.stop_ids();
    } catch (const lota::Error&) {
    }
}

void fuzz_jinja(const uint8_t* data, size_t size) {
    auto [tmpl, messages_json] = split_at_nul(data, size);
    static const nlohmann::ordered_json default_messages = json_parse_ordered(kDefaultMessages, "messages");
    static const text::ChatTemplateOptions opt = [] {
        text::ChatTemplateOptions o;
        o.add_generation_prompt = true;
        o.bos_token = "<s>";
        o.eos_token = "</s>";
        o.extra["tools"] = json_parse_ordered(R"J([{"type": "function", "function": {"name": "add",
            "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}])J", "tools");
        return o;
    }();
    try {
        nlohmann::ordered_json messages;
        if (!messages_json.empty()) messages = json_parse_ordered(messages_json, "messages", false);
        const bool own = !messages_json.empty() && !messages.is_discarded();
        text::chat_template_render(tmpl, own ? messages : default_messages, opt);
    } catch (const lota::Error&) {
    }
}

}  // namespace lota::fuzz
