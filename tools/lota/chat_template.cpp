// `lota chat-template`: renders a tokenizer's chat template for a JSON list of messages read
// from stdin and writes the prompt to stdout exactly (no added newline), as transformers'
// apply_chat_template(..., tokenize=False) would; --json prints {"text": prompt} instead.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "args.h"
#include "commands.h"
#include "text/chat_template.h"
#include "util/check.h"
#include "util/json_read.h"

namespace {

struct ChatTemplateArgs {
    std::string tokenizer_dir;
    std::string template_file;
    std::string extra_json;
    bool add_generation_prompt = false;
    bool json = false;
};

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

int run_chat_template(const ChatTemplateArgs& args) {
    using lota::text::ChatTemplateOptions;
    LOTA_CHECK(!args.tokenizer_dir.empty() || !args.template_file.empty(),
               "chat-template: give --tokenizer DIR or --template FILE");
    ChatTemplateOptions opt;
    opt.add_generation_prompt = args.add_generation_prompt;
    std::string tmpl;
    if (!args.tokenizer_dir.empty()) {  // with --template, the directory only supplies the special tokens
        lota::text::ChatTemplateConfig cfg = lota::text::chat_template_config_load(args.tokenizer_dir);
        tmpl = cfg.chat_template;
        LOTA_CHECK(!tmpl.empty() || !args.template_file.empty(),
                   "%s/tokenizer_config.json: no chat_template (and no chat_template.jinja); give --template FILE",
                   args.tokenizer_dir.c_str());
        opt.bos_token = cfg.bos_token;
        opt.eos_token = cfg.eos_token;
        opt.extra = cfg.special_tokens;
    }
    if (!args.template_file.empty()) {
        std::ifstream f(args.template_file, std::ios::binary);
        LOTA_CHECK(f.good(), "%s: cannot read the template file", args.template_file.c_str());
        tmpl = read_all(f);
    }
    if (!args.extra_json.empty()) {
        auto extra = lota::json_parse_ordered(args.extra_json, "chat-template --extra", false);
        LOTA_CHECK(!extra.is_discarded() && extra.is_object(), "chat-template: --extra must be a JSON object");
        for (auto it = extra.begin(); it != extra.end(); ++it) opt.extra[it.key()] = it.value();
    }
    auto messages = lota::json_parse_ordered(read_all(std::cin), "chat-template: stdin", false);
    LOTA_CHECK(!messages.is_discarded(), "chat-template: stdin is not valid JSON (expected a list of messages)");
    std::string out = lota::text::chat_template_render(tmpl, messages, opt);
    if (args.json) {
        lota::cli::result_print(true, nlohmann::json{{"text", out}}, "");
        return 0;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return 0;
}

}  // namespace

LOTA_COMMAND("chat-template", "render a chat template for a JSON list of messages on stdin",
             [](CLI::App& sub) -> lota::cli::CommandRun {
                 auto args = std::make_shared<ChatTemplateArgs>();
                 sub.add_option("--tokenizer", args->tokenizer_dir,
                                "tokenizer directory (tokenizer_config.json: chat_template, bos/eos tokens)");
                 sub.add_option("--template", args->template_file, "Jinja template file (overrides the tokenizer's)");
                 sub.add_option("--extra", args->extra_json,
                                "JSON object of extra template variables, e.g. {\"enable_thinking\": false}");
                 sub.add_flag("--add-generation-prompt", args->add_generation_prompt,
                              "append the assistant header (default off)");
                 lota::cli::add_json_flag(sub, args->json);
                 return [args] { return run_chat_template(*args); };
             });
