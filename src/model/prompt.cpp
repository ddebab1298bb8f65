// Prompt encoding, stop tokens and streamed decoding (see prompt.h).
#include "model/prompt.h"

#include <algorithm>

#include "text/chat_template.h"
#include "util/check.h"
#include "util/fs.h"

namespace lota::model {

PromptText::PromptText(const std::string& model_dir) : dir_(model_dir), tok_([&] {
    LOTA_CHECK(path_exists(model_dir + "/tokenizer.json"),
               "%s: no tokenizer.json; text prompts need a tokenizer (use --prompt-ids, or import/copy one)",
               model_dir.c_str());
    return text::Tokenizer::from_dir(model_dir);
}()) {}

std::vector<int64_t> PromptText::encode_chat(const nlohmann::json& messages, bool add_generation_prompt) const {
    LOTA_CHECK(!tok_.chat_template().empty(), "%s/tokenizer_config.json has no chat_template", dir_.c_str());
    text::ChatTemplateOptions opts;
    opts.add_generation_prompt = add_generation_prompt;
    opts.bos_token = tok_.bos_token();
    opts.eos_token = tok_.eos_token();
    std::string rendered = text::chat_template_render(tok_.chat_template(), messages, opts);
    auto ids = tok_.encode(rendered, /*add_special_tokens=*/false);
    return std::vector<int64_t>(ids.begin(), ids.end());
}

std::vector<int64_t> PromptText::encode_prompt(const std::string& prompt, bool chat) const {
    if (chat) return encode_chat(nlohmann::json::array({{{"role", "user"}, {"content", prompt}}}), true);
    auto ids = tok_.encode(prompt, /*add_special_tokens=*/true);
    return std::vector<int64_t>(ids.begin(), ids.end());
}

std::vector<int64_t> PromptText::stop_ids(const io::ModelConfig& cfg) const {
    std::vector<int64_t> out(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
    for (int32_t id : tok_.stop_ids())
        if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    return out;
}

std::string StreamDecoder::push(int64_t token) {
    ids_.push_back((int32_t)token);
    std::string text = text_.tokenizer().decode(ids_, /*skip_special_tokens=*/true);
    // Hold back an incomplete UTF-8 sequence (byte-level tokens can split characters); it shows
    // as U+FFFD at the end of the decoded text.
    static const std::string kReplacement = "\xEF\xBF\xBD";
    size_t stable = text.size();
    if (stable >= 3 && text.compare(stable - 3, 3, kReplacement) == 0) stable -= 3;
    if (stable <= emitted_) return "";
    std::string piece = text.substr(emitted_, stable - emitted_);
    emitted_ = stable;
    return piece;
}

std::string StreamDecoder::finish() {
    std::string text = text_.tokenizer().decode(ids_, true);
    std::string rest = text.size() > emitted_ ? text.substr(emitted_) : "";
    emitted_ = text.size();
    return rest;
}

}  // namespace lota::model
