// Chat template rendering (see chat_template.h): builds the variables transformers'
// render_jinja_template passes, then parses and evaluates the template with the Jinja subset
// interpreter (jinja_lexer/parser/eval).
#include "text/chat_template.h"

#include <fstream>
#include <sstream>

#include "text/jinja_ast.h"
#include "text/jinja_eval.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::text {
namespace {

using jinja::Value;

// transformers' _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r}.
Value alias_reasoning(const nlohmann::ordered_json& m) {
    Value msg = Value::from_json(m);
    const Value* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
        const Value* v = msg.dict_data().find(key);
        if (v && !v->is_none()) {
            reasoning = v;
            break;
        }
    }
    if (!reasoning) return msg;
    Value out = Value::dict();
    out.dict_data().set("thinking", *reasoning);
    for (const auto& kv : msg.dict_data().items) out.dict_data().set(kv.first, kv.second);
    out.dict_data().set("reasoning_content", *reasoning);
    return out;
}

bool read_text(const std::string& path, std::string* out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    *out = ss.str();
    return true;
}

// A special token given as "text", {"content": "text", ...} or null.
std::string token_text(const nlohmann::ordered_json& cfg, const char* key, const std::string& file) {
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return "";
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        return (*it)["content"].get<std::string>();
    LOTA_FAIL("%s: %s must be a string or an object with a string \"content\"", file.c_str(), key);
}

std::string template_from_config(const nlohmann::ordered_json& cfg, const std::string& file) {
    auto it = cfg.find("chat_template");
    if (it == cfg.end() || it->is_null()) return "";
    if (it->is_string()) return it->get<std::string>();
    LOTA_CHECK(it->is_array(), "%s: chat_template must be a string or a list of {name, template}", file.c_str());
    for (const auto& t : *it) {
        LOTA_CHECK(t.is_object() && t.contains("name") && t.contains("template") && t["name"].is_string() &&
                       t["template"].is_string(),
                   "%s: chat_template list entries must be {\"name\": string, \"template\": string}", file.c_str());
        if (t["name"] == "default") return t["template"].get<std::string>();
    }
    LOTA_FAIL("%s: chat_template list has no template named \"default\"", file.c_str());
}

}  // namespace

ChatTemplateConfig chat_template_config_load(const std::string& dir) {
    std::string file = dir + "/tokenizer_config.json", text;
    LOTA_CHECK(read_text(file, &text), "%s: cannot read the file", file.c_str());
    nlohmann::ordered_json cfg = json_parse_ordered(text, file, false);
    LOTA_CHECK(!cfg.is_discarded() && cfg.is_object(), "%s: not a JSON object", file.c_str());
    ChatTemplateConfig out;
    out.chat_template = template_from_config(cfg, file);
    if (out.chat_template.empty()) read_text(dir + "/chat_template.jinja", &out.chat_template);
    out.bos_token = token_text(cfg, "bos_token", file);
    out.eos_token = token_text(cfg, "eos_token", file);
    for (const char* key : {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
        std::string t = token_text(cfg, key, file);
        if (!t.empty()) out.special_tokens[key] = t;
    }
    return out;
}

std::string chat_template_render(const std::string& tmpl, const nlohmann::ordered_json& messages,
                                 const ChatTemplateOptions& options) {
    LOTA_CHECK(messages.is_array(), "chat template: messages must be a JSON array, got %s", messages.type_name());
    LOTA_CHECK(options.extra.is_object(), "chat template: extra variables must be a JSON object, got %s",
               options.extra.type_name());
    std::vector<Value> msgs;
    for (size_t i = 0; i < messages.size(); ++i) {
        LOTA_CHECK(messages[i].is_object(), "chat template: message %zu must be a JSON object, got %s", i,
                   messages[i].type_name());
        msgs.push_back(alias_reasoning(messages[i]));
    }
    std::vector<std::pair<std::string, Value>> vars;
    vars.emplace_back("messages", Value::list(std::move(msgs)));
    vars.emplace_back("tools", Value::none());
    vars.emplace_back("documents", Value::none());
    vars.emplace_back("add_generation_prompt", Value::boolean(options.add_generation_prompt));
    if (!options.bos_token.empty()) vars.emplace_back("bos_token", Value::string(options.bos_token));
    if (!options.eos_token.empty()) vars.emplace_back("eos_token", Value::string(options.eos_token));
    for (auto it = options.extra.begin(); it != options.extra.end(); ++it) {
        LOTA_CHECK(it.key() != "messages", "chat template: extra variables cannot redefine 'messages'");
        vars.emplace_back(it.key(), Value::from_json(it.value()));
    }
    jinja::Body body = jinja::jinja_parse(tmpl);
    return jinja::jinja_render(body, vars);
}

}  // namespace lota::text
