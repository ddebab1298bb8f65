// `lota tokenize`: encodes stdin text to a JSON array of token ids, or decodes one (--decode),
// with a tokenizer.json directory. --jsonl processes one JSON value per line (a string to encode,
// or an id array to decode into a JSON string), for batches. --chat renders a JSON list of
// messages with the chat template first and encodes the prompt without adding special tokens
// again, as transformers' apply_chat_template(tokenize=True) does. --json wraps the result in one
// JSON object: {"ids": [...]} (encode, --chat) or {"text": "..."} (--decode).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::cli {
namespace {

struct TokenizeOptions {
    std::string dir;
    bool decode = false;
    bool no_special = false;
    bool jsonl = false;
    bool chat = false;
    bool add_generation_prompt = false;
    bool json = false;
};

// Ids from JSON: integers the tokenizer knows (an unknown id would be dropped from the text).
std::vector<int32_t> parse_ids(const std::string& text, const char* where, const text::Tokenizer& tok) {
    nlohmann::json j;
    try {
        j = lota::json_parse(text, std::string("tokenize --decode: ") + where);
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("tokenize --decode: %s is not JSON: %s", where, e.what());
    }
    LOTA_CHECK(j.is_array(), "tokenize --decode: %s must be a JSON array of token ids", where);
    std::vector<int32_t> ids;
    const int64_t V = tok.vocab_size();
    for (const auto& v : j) {
        LOTA_CHECK(v.is_number_integer(), "tokenize --decode: %s contains a non-integer id: %s", where,
                   v.dump().c_str());
        // Unsigned values above INT64_MAX compare as out of range rather than wrapping.
        const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() < (uint64_t)V
                                                     : v.get<int64_t>() >= 0 && v.get<int64_t>() < V;
        LOTA_CHECK(in_range && !tok.id_to_token((int32_t)v.get<int64_t>()).empty(),
                   "tokenize --decode: %s: id %s is not in the tokenizer's vocabulary (ids 0 to %lld)", where,
                   v.dump().c_str(), (long long)V - 1);
        ids.push_back((int32_t)v.get<int64_t>());
    }
    return ids;
}

void write_out(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

// The encoded ids: a JSON array on one line, or {"ids": [...]} with --json.
void write_ids(const TokenizeOptions& o, const std::vector<int32_t>& ids) {
    if (o.json) result_print(true, nlohmann::json{{"ids", ids}}, "");
    else write_out(nlohmann::json(ids).dump() + "\n");
}

int run_chat(const TokenizeOptions& o, const text::Tokenizer& tok) {
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto messages = lota::json_parse_ordered(input, "tokenize --chat: stdin", false);
    LOTA_CHECK(!messages.is_discarded() && messages.is_array(),
               "tokenize --chat: stdin must be a JSON list of messages");
    text::ChatTemplateConfig cfg = text::chat_template_config_load(o.dir);
    text::ChatTemplateOptions opt;
    opt.add_generation_prompt = o.add_generation_prompt;
    opt.bos_token = cfg.bos_token;
    opt.eos_token = cfg.eos_token;
    opt.extra = cfg.special_tokens;
    std::string prompt = text::chat_template_render(cfg.chat_template, messages, opt);
    write_ids(o, tok.encode(prompt, false));
    std::fflush(stdout);
    return 0;
}

int run_tokenize(const TokenizeOptions& o) {
    LOTA_CHECK(!(o.chat && (o.decode || o.jsonl)), "tokenize: --chat cannot be combined with --decode or --jsonl");
    LOTA_CHECK(o.chat || !o.add_generation_prompt, "tokenize: --add-generation-prompt needs --chat");
    LOTA_CHECK(!(o.json && o.jsonl), "tokenize: --jsonl already writes one JSON value per line; drop --json");
    text::Tokenizer tok = text::Tokenizer::from_dir(o.dir);
    if (o.chat) return run_chat(o, tok);
    const bool special = !o.no_special;
    if (o.jsonl) {
        std::string line;
        for (size_t n = 1; std::getline(std::cin, line); ++n) {
            std::string where = "stdin line " + std::to_string(n);
            if (o.decode) {
                // ASCII-escaped, so U+2028 and friends cannot look like line breaks to readers.
                const std::string text = tok.decode(parse_ids(line, where.c_str(), tok), !special);
                write_out(nlohmann::json(text).dump(-1, ' ', true) + "\n");
                continue;
            }
            nlohmann::json j;
            try {
                j = lota::json_parse(line, "tokenize --jsonl: " + where);
            } catch (const nlohmann::json::exception& e) {
                LOTA_FAIL("tokenize --jsonl: %s is not JSON: %s", where.c_str(), e.what());
            }
            LOTA_CHECK(j.is_string(), "tokenize --jsonl: %s must be a JSON string", where.c_str());
            write_out(nlohmann::json(tok.encode(j.get<std::string>(), special)).dump() + "\n");
        }
        std::fflush(stdout);
        return 0;
    }
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (!o.decode) {
        write_ids(o, tok.encode(input, special));
    } else {
        const std::string text = tok.decode(parse_ids(input, "stdin", tok), !special);
        if (o.json) result_print(true, nlohmann::json{{"text", text}}, "");
        else write_out(text);
    }
    std::fflush(stdout);
    return 0;
}

}  // namespace

LOTA_COMMAND("tokenize", "Encode stdin text to token ids (JSON), or decode ids back to text",
             [](CLI::App& sub) -> CommandRun {
                 auto o = std::make_shared<TokenizeOptions>();
                 sub.add_option("--tokenizer", o->dir, "directory with tokenizer.json and tokenizer_config.json")
                     ->required();
                 sub.add_flag("--decode", o->decode, "stdin is a JSON array of ids; print the text");
                 sub.add_flag("--no-special", o->no_special,
                              "encode without adding special tokens (BOS...); decode skipping special tokens");
                 sub.add_flag("--chat", o->chat,
                              "stdin is a JSON list of messages: render the chat template, then encode");
                 sub.add_flag("--add-generation-prompt", o->add_generation_prompt,
                              "with --chat: append the assistant header");
                 sub.add_flag("--jsonl", o->jsonl,
                              "one JSON value per line: strings to encode (→ id arrays) or id arrays to decode "
                              "(→ JSON strings)");
                 add_json_flag(sub, o->json);
                 return [o] { return run_tokenize(*o); };
             });

}  // namespace lota::cli
