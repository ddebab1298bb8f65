// Fuzz targets for the torch-free readers of JSON and dataset files: config.json, token-id files
// and the fine-tuning datasets (alpaca JSON, gsm8k and chat JSONL, viggo CSV). See targets.h.
#include <string>

#include "data/readers.h"
#include "io/hf_config.h"
#include "io/token_ids.h"
#include "mem_file.h"
#include "targets.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::fuzz {

void fuzz_config(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        nlohmann::json j;
        try {
            j = json_parse(text, "config.json");
        } catch (const nlohmann::json::exception&) {
            return;  // a syntax error or an overflowing number: every caller words these itself
        }
        try {
            io::hf_config_parse(j, "config.json");
        } catch (const lota::Error&) {
        }
        io::token_ids_parse(j, "ids.json");
    } catch (const lota::Error&) {
    }
}

void fuzz_dataset(const uint8_t* data, size_t size) {
    if (size == 0) return;
    const data::DataFormat formats[] = {data::DataFormat::ALPACA, data::DataFormat::GSM8K, data::DataFormat::CHAT,
                                        data::DataFormat::VIGGO};
    const data::DataFormat format = formats[data[0] % 4];
    MemFile file(data + 1, size - 1);
    try {
        data::data_read_pairs(file.path(), format);
    } catch (const lota::Error&) {
    }
    try {
        data::csv_parse(std::string(reinterpret_cast<const char*>(data + 1), size - 1), "data.csv");
    } catch (const lota::Error&) {
    }
}

}  // namespace lota::fuzz
