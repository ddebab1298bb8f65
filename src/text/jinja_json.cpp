// tojson for the Jinja interpreter: Python's json.dumps(value, ensure_ascii, indent, separators,
// sort_keys), which transformers installs as the `tojson` filter (no HTML escaping).
#include <algorithm>

#include "text/jinja_limits.h"
#include "text/jinja_strings.h"
#include "text/jinja_value.h"

namespace lota::text::jinja {
namespace {

struct JsonWriter {
    bool ensure_ascii;
    const std::string* indent;
    const std::string& item_sep;
    const std::string& key_sep;
    bool sort_keys;
    int line;
    std::string out;

    void newline(int depth) {
        out += '\n';
        for (int i = 0; i < depth; ++i) out += *indent;
        check_text_size(out.size(), line);  // a long indent string times the depth and item count
    }

    void write(const Value& v, int depth) {
        switch (v.kind()) {
            case Kind::NONE: out += "null"; return;
            case Kind::BOOL: out += v.as_bool() ? "true" : "false"; return;
            case Kind::INT: out += std::to_string(v.as_int()); return;
            case Kind::FLOAT: {
                std::string r = float_repr(v.as_double());
                out += r == "nan" ? "NaN" : r == "inf" ? "Infinity" : r == "-inf" ? "-Infinity" : r;
                return;
            }
            case Kind::STRING:
                out += json_string(v.as_string(), ensure_ascii);
                check_text_size(out.size(), line);  // a list of many copies of one long string
                return;
            case Kind::LIST:
                if (!v.list_data().is_iterator) return write_list(v.list_data().items, depth);
                break;
            case Kind::DICT: return write_dict(v.dict_data(), depth);
            default: break;
        }
        fail_at(line, "Object of type " + v.type_name() + " is not JSON serializable");
    }

    void write_list(const std::vector<Value>& items, int depth) {
        if (items.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
            if (i) out += item_sep;
            if (indent) newline(depth + 1);
            write(items[i], depth + 1);
        }
        if (indent) newline(depth);
        out += ']';
    }

    void write_dict(const DictData& d, int depth) {
        if (d.items.empty()) {
            out += "{}";
            return;
        }
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& kv : d.items) items.push_back(&kv);
        if (sort_keys)
            std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
            if (i) out += item_sep;
            if (indent) newline(depth + 1);
            out += json_string(items[i]->first, ensure_ascii) + key_sep;
            write(items[i]->second, depth + 1);
        }
        if (indent) newline(depth);
        out += '}';
    }
};

}  // namespace

std::string value_to_json(const Value& v, bool ensure_ascii, const std::string* indent, const std::string& item_sep,
                          const std::string& key_sep, bool sort_keys, int line) {
    JsonWriter w{ensure_ascii, indent, item_sep, key_sep, sort_keys, line, {}};
    w.write(v, 0);
    return w.out;
}

}  // namespace lota::text::jinja
