// Chat templates: renders tokenizer_config.json's Jinja `chat_template` exactly as HF
// transformers' apply_chat_template does (jinja2 sandbox with trim_blocks=True,
// lstrip_blocks=True; globals raise_exception, strftime_now; the filters and tests HF
// templates use). A construct the renderer does not support raises lota::Error naming it:
// never a silently wrong prompt. The interpreter lives in jinja_*.{h,cpp}.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lota::text {

struct ChatTemplateOptions {
    bool add_generation_prompt = false;  ///< append the assistant header
    std::string bos_token;               ///< from tokenizer_config.json ("": not defined for the template)
    std::string eos_token;               ///< ("": not defined for the template)
    /// Extra variables passed to the template (e.g. "tools", "enable_thinking", "documents",
    /// "pad_token"); they override the variables above, as transformers' kwargs do.
    /// ordered_json keeps key order, which `tojson` output depends on; a nlohmann::json
    /// converts implicitly (with its keys sorted).
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

/// What a Hugging Face tokenizer directory says about chat templating.
struct ChatTemplateConfig {
    std::string chat_template;  ///< the "default" template
    std::string bos_token;      ///< "" when absent or null
    std::string eos_token;
    /// unk/sep/pad/cls/mask tokens that are set, as transformers passes them to the template.
    nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();
};

/// Reads DIR/tokenizer_config.json: chat_template as a string or a list of {name, template}
/// (the "default" one), else DIR/chat_template.jinja, else ""; tokens as strings or
/// {"content": ...}. Throws lota::Error naming the file when it is unreadable or malformed.
ChatTemplateConfig chat_template_config_load(const std::string& dir);

/// Renders `tmpl` for `messages` (a JSON array of {"role", "content", ...} objects), with the
/// variables transformers passes: messages, tools and documents (None unless in `extra`),
/// add_generation_prompt, bos_token/eos_token, then `extra`. Like transformers, a message's
/// reasoning given as reasoning_content/thinking/reasoning is visible under all three names
/// (reasoning_content and thinking).
/// Throws lota::Error on template syntax errors, unsupported constructs and raise_exception().
std::string chat_template_render(const std::string& tmpl, const nlohmann::ordered_json& messages,
                                 const ChatTemplateOptions& options);

}  // namespace lota::text
