// Dataset file readers (data_formats.h).
#include "data/readers.h"

#include <sstream>

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::data {
namespace {

nlohmann::json msg(const std::string& role, const std::string& content) {
    return {{"role", role}, {"content", content}};
}

TextPair pair_make(const std::string& source, const std::string& target) {
    TextPair p;
    p.prompt = nlohmann::json::array({msg("system", ""), msg("user", source)});
    p.target = target;
    return p;
}

std::string str_field(const nlohmann::json& j, const char* key, bool required, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) {
        LOTA_CHECK(!required, "%s: missing field \"%s\"", where.c_str(), key);
        return "";
    }
    LOTA_CHECK(j[key].is_string(), "%s: field \"%s\" must be a string, got %s", where.c_str(), key,
               j[key].type_name());
    return j[key].get<std::string>();
}

std::vector<nlohmann::json> jsonl_read(const std::string& path) {
    std::istringstream in(io::file_read_text(path));
    std::vector<nlohmann::json> out;
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            out.push_back(json_parse(line, path + ":" + std::to_string(n)));
        } catch (const nlohmann::json::exception& e) {
            LOTA_FAIL("%s:%lld: malformed JSON: %s", path.c_str(), (long long)n, e.what());
        }
        LOTA_CHECK(out.back().is_object(), "%s:%lld: expected a JSON object per line", path.c_str(), (long long)n);
    }
    return out;
}

TextPair chat_pair(const nlohmann::json& j, const std::string& where) {
    LOTA_CHECK(j.contains("messages") && j["messages"].is_array() && j["messages"].size() >= 2,
               "%s: expected \"messages\": an array of at least 2 messages", where.c_str());
    const auto& m = j["messages"];
    TextPair p;
    for (size_t i = 0; i < m.size(); ++i) {
        const std::string w = where + " message " + std::to_string(i);
        LOTA_CHECK(m[i].is_object(), "%s: expected an object", w.c_str());
        const std::string role = str_field(m[i], "role", true, w), content = str_field(m[i], "content", true, w);
        LOTA_CHECK(role == "system" || role == "user" || role == "assistant",
                   "%s: role must be system, user or assistant, got '%s'", w.c_str(), role.c_str());
        if (i + 1 == m.size()) {
            LOTA_CHECK(role == "assistant", "%s: the last message must be the assistant's answer (the target)",
                       w.c_str());
            p.target = content;
        } else {
            if (i == 0 && role != "system") p.prompt.push_back(msg("system", ""));
            p.prompt.push_back(msg(role, content));
        }
    }
    return p;
}

}  // namespace

DataFormat data_format_from_name(const std::string& name) {
    if (name == "alpaca") return DataFormat::ALPACA;
    if (name == "gsm8k") return DataFormat::GSM8K;
    if (name == "chat") return DataFormat::CHAT;
    if (name == "viggo") return DataFormat::VIGGO;
    if (name == "text") return DataFormat::TEXT;
    LOTA_FAIL("unknown data format '%s' (expected alpaca, gsm8k, chat, viggo or text)", name.c_str());
}

const std::string& viggo_instruction() {
    static const std::string s =
        "Given a target sentence construct the underlying meaning representation of the input sentence as a "
        "single function with attributes and attribute values. This function should describe the target string "
        "accurately and the function must be one of the following ['inform', 'request', 'give_opinion', "
        "'confirm', 'verify_attribute', 'suggest', 'request_explanation', 'recommend', 'request_attribute']. The "
        "attributes must be one of the following: ['name', 'exp_release_date', 'release_year', 'developer', "
        "'esrb', 'rating', 'genres', 'player_perspective', 'has_multiplayer', 'platforms', 'available_on_steam', "
        "'has_linux_release', 'has_mac_release', 'specifier']";
    return s;
}

std::vector<std::vector<std::string>> csv_parse(const std::string& text, const std::string& file) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false, any = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                field += c;
            }
        } else if (c == '"') {
            quoted = true;
            any = true;
        } else if (c == ',') {
            row.push_back(field);
            field.clear();
            any = true;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            if (any || !field.empty()) row.push_back(field);
            if (!row.empty()) rows.push_back(row);
            row.clear();
            field.clear();
            any = false;
        } else {
            field += c;
            any = true;
        }
    }
    LOTA_CHECK(!quoted, "%s: unterminated quoted field at the end of the file", file.c_str());
    if (any || !field.empty()) row.push_back(field);
    if (!row.empty()) rows.push_back(row);
    return rows;
}

std::vector<TextPair> data_read_pairs(const std::string& path, DataFormat format) {
    std::vector<TextPair> out;
    if (format == DataFormat::ALPACA) {
        nlohmann::json j;
        try {
            j = json_parse(io::file_read_text(path), path);
        } catch (const nlohmann::json::exception& e) {
            LOTA_FAIL("%s: malformed JSON: %s", path.c_str(), e.what());
        }
        LOTA_CHECK(j.is_array(), "%s: expected a JSON list of {instruction, input, output}", path.c_str());
        for (size_t i = 0; i < j.size(); ++i) {
            const std::string w = path + " record " + std::to_string(i);
            LOTA_CHECK(j[i].is_object(), "%s: expected an object", w.c_str());
            const std::string ins = str_field(j[i], "instruction", true, w), inp = str_field(j[i], "input", false, w);
            out.push_back(pair_make(inp.empty() ? ins : ins + "\n\n" + inp, str_field(j[i], "output", true, w)));
        }
    } else if (format == DataFormat::GSM8K || format == DataFormat::CHAT) {
        const auto lines = jsonl_read(path);
        for (size_t i = 0; i < lines.size(); ++i) {
            const std::string w = path + " record " + std::to_string(i);
            if (format == DataFormat::CHAT)
                out.push_back(chat_pair(lines[i], w));
            else
                out.push_back(pair_make(str_field(lines[i], "question", true, w), str_field(lines[i], "answer", true, w)));
        }
    } else if (format == DataFormat::VIGGO) {
        const auto rows = csv_parse(io::file_read_text(path), path);
        LOTA_CHECK(!rows.empty(), "%s: empty CSV (expected a header mr,ref)", path.c_str());
        int mr = -1, ref = -1;
        for (size_t c = 0; c < rows[0].size(); ++c) {
            if (rows[0][c] == "mr") mr = (int)c;
            if (rows[0][c] == "ref") ref = (int)c;
        }
        LOTA_CHECK(mr >= 0 && ref >= 0, "%s: header must name columns 'mr' and 'ref'", path.c_str());
        for (size_t r = 1; r < rows.size(); ++r) {
            LOTA_CHECK(rows[r].size() == rows[0].size(), "%s: row %zu has %zu fields, the header has %zu", path.c_str(),
                       r + 1, rows[r].size(), rows[0].size());
            out.push_back(pair_make(viggo_instruction() + "\n\n" + rows[r][ref], rows[r][mr]));
        }
    } else {
        LOTA_FAIL("%s: format 'text' has no prompt/target pairs", path.c_str());
    }
    LOTA_CHECK(!out.empty(), "%s: no examples", path.c_str());
    return out;
}

}  // namespace lota::data
