// Chat templates: renders tokenizer_config.json's Jinja `chat_template` exactly as HF
// transformers' apply_chat_template does (jinja2 sandbox with trim_blocks=True,
// lstrip_blocks=True; globals raise_exception, strftime_now; the filters and tests HF
// templates use). A construct the renderer does not support raises lota::Error naming it:
// never a silently wrong prompt.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lota::text {

struct ChatTemplateOptions {
    bool add_generation_prompt = false;  ///< append the assistant header
    std::string bos_token;               ///< from tokenizer_config.json ("" when absent)
    std::string eos_token;
    /// Extra variables passed to the template (e.g. "tools", "enable_thinking").
    nlohmann::json extra = nlohmann::json::object();
};

/// Renders `tmpl` for `messages` (a JSON array of {"role", "content", ...} objects).
/// Throws lota::Error on template syntax errors, unsupported constructs and raise_exception().
std::string chat_template_render(const std::string& tmpl, const nlohmann::json& messages,
                                 const ChatTemplateOptions& options);

}  // namespace lota::text
