// MMLU data and prompts (see mmlu_data.h).
#include "eval/mmlu_data.h"

#include <map>

#include "io/mapped_file.h"
#include "text/jinja_strings.h"
#include "data/readers.h"
#include "util/check.h"
#include "util/fs.h"

namespace lota::eval {
namespace {

// Subject -> category, as lm-eval-harness's lm_eval/tasks/mmlu/_generate_configs.py (SUBJECTS),
// whose groups mmlu_humanities/_stem/_social_sciences/_other the paper's Table 1 reports. It
// differs from the original hendrycks/test categories.py in one place: anatomy is STEM there,
// "other" (health) in the original.
const std::map<std::string, std::string>& category_table() {
    static const std::map<std::string, std::string> t = {
        {"abstract_algebra", "stem"},
        {"anatomy", "stem"},
        {"astronomy", "stem"},
        {"business_ethics", "other"},
        {"clinical_knowledge", "other"},
        {"college_biology", "stem"},
        {"college_chemistry", "stem"},
        {"college_computer_science", "stem"},
        {"college_mathematics", "stem"},
        {"college_medicine", "other"},
        {"college_physics", "stem"},
        {"computer_security", "stem"},
        {"conceptual_physics", "stem"},
        {"econometrics", "social_sciences"},
        {"electrical_engineering", "stem"},
        {"elementary_mathematics", "stem"},
        {"formal_logic", "humanities"},
        {"global_facts", "other"},
        {"high_school_biology", "stem"},
        {"high_school_chemistry", "stem"},
        {"high_school_computer_science", "stem"},
        {"high_school_european_history", "humanities"},
        {"high_school_geography", "social_sciences"},
        {"high_school_government_and_politics", "social_sciences"},
        {"high_school_macroeconomics", "social_sciences"},
        {"high_school_mathematics", "stem"},
        {"high_school_microeconomics", "social_sciences"},
        {"high_school_physics", "stem"},
        {"high_school_psychology", "social_sciences"},
        {"high_school_statistics", "stem"},
        {"high_school_us_history", "humanities"},
        {"high_school_world_history", "humanities"},
        {"human_aging", "other"},
        {"human_sexuality", "social_sciences"},
        {"international_law", "humanities"},
        {"jurisprudence", "humanities"},
        {"logical_fallacies", "humanities"},
        {"machine_learning", "stem"},
        {"management", "other"},
        {"marketing", "other"},
        {"medical_genetics", "other"},
        {"miscellaneous", "other"},
        {"moral_disputes", "humanities"},
        {"moral_scenarios", "humanities"},
        {"nutrition", "other"},
        {"philosophy", "humanities"},
        {"prehistory", "humanities"},
        {"professional_accounting", "other"},
        {"professional_law", "humanities"},
        {"professional_medicine", "other"},
        {"professional_psychology", "social_sciences"},
        {"public_relations", "social_sciences"},
        {"security_studies", "social_sciences"},
        {"sociology", "social_sciences"},
        {"us_foreign_policy", "social_sciences"},
        {"virology", "other"},
        {"world_religions", "humanities"},
    };
    return t;
}

const char* const kLetters = "ABCD";

int answer_parse(const std::string& a, const std::string& where) {
    if (a.size() == 1 && a[0] >= '0' && a[0] <= '3') return a[0] - '0';
    if (a.size() == 1 && a[0] >= 'A' && a[0] <= 'D') return a[0] - 'A';
    LOTA_FAIL("%s: answer must be 0-3 or A-D, got \"%s\"", where.c_str(), a.c_str());
}

std::string subject_file(const std::string& dir, const std::string& split, const std::string& subject) {
    return dir + "/" + split + "/" + subject + "_" + split + ".csv";
}

std::string question_text(const MmluQuestion& q) {
    std::string s = text::jinja::py_strip(q.question, nullptr, true, true);  // lm-eval: question.strip()
    for (int i = 0; i < 4; ++i) s += std::string("\n") + kLetters[i] + ". " + q.choices[(size_t)i];
    return s + "\nAnswer:";
}

}  // namespace

const std::vector<std::string>& mmlu_categories() {
    static const std::vector<std::string> c = {"humanities", "stem", "social_sciences", "other"};
    return c;
}

const std::string& mmlu_subject_category(const std::string& subject) {
    const auto it = category_table().find(subject);
    LOTA_CHECK(it != category_table().end(), "unknown MMLU subject \"%s\" (not one of the 57 subjects)",
               subject.c_str());
    return it->second;
}

std::vector<MmluQuestion> mmlu_read_csv(const std::string& path) {
    const auto rows = data::csv_parse(io::file_read_text(path), path);
    size_t first = 0;
    if (!rows.empty() && !rows[0].empty() && rows[0][0] == "question") {
        const std::vector<std::string> header = {"question", "choice0", "choice1", "choice2", "choice3", "answer"};
        LOTA_CHECK(rows[0] == header, "%s: header must be question,choice0,choice1,choice2,choice3,answer",
                   path.c_str());
        first = 1;
    }
    std::vector<MmluQuestion> out;
    for (size_t r = first; r < rows.size(); ++r) {
        const std::string where = path + " row " + std::to_string(r + 1);
        LOTA_CHECK(rows[r].size() == 6, "%s: expected 6 fields (question, 4 choices, answer), got %zu", where.c_str(),
                   rows[r].size());
        MmluQuestion q;
        q.question = rows[r][0];
        for (size_t i = 0; i < 4; ++i) q.choices[i] = rows[r][1 + i];
        q.answer = answer_parse(rows[r][5], where);
        out.push_back(std::move(q));
    }
    LOTA_CHECK(!out.empty(), "%s: no questions", path.c_str());
    return out;
}

std::vector<MmluSubject> mmlu_load(const std::string& dir, const std::vector<std::string>& only, int64_t shots,
                                   int64_t limit) {
    LOTA_CHECK(shots >= 0, "mmlu: --shots must be >= 0, got %lld", (long long)shots);
    std::vector<std::string> names = only;
    if (names.empty()) {
        const std::string suffix = "_test.csv";
        for (const std::string& f : dir_list(dir + "/test"))
            if (f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
                names.push_back(f.substr(0, f.size() - suffix.size()));
        LOTA_CHECK(!names.empty(), "%s/test: no *_test.csv files (expected the MMLU folder with dev/ and test/)",
                   dir.c_str());
    }
    std::vector<MmluSubject> out;
    for (const std::string& name : names) {
        const std::string test_file = subject_file(dir, "test", name);
        LOTA_CHECK(path_exists(test_file), "%s: missing (MMLU subject \"%s\")", test_file.c_str(), name.c_str());
        mmlu_subject_category(name);  // unknown subjects fail here, before any work
        MmluSubject s;
        s.name = name;
        s.test = mmlu_read_csv(test_file);
        if (limit >= 0 && (int64_t)s.test.size() > limit) s.test.resize((size_t)limit);
        if (shots > 0) {
            const std::string dev_file = subject_file(dir, "dev", name);
            LOTA_CHECK(path_exists(dev_file), "%s: missing (needed for %lld-shot prompts)", dev_file.c_str(),
                       (long long)shots);
            s.dev = mmlu_read_csv(dev_file);
            LOTA_CHECK((int64_t)s.dev.size() >= shots, "%s: %zu examples, %lld-shot prompts need %lld",
                       dev_file.c_str(), s.dev.size(), (long long)shots, (long long)shots);
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::string mmlu_prompt(const MmluSubject& subject, int64_t shots, const MmluQuestion& q) {
    std::string topic = subject.name;
    for (char& c : topic)
        if (c == '_') c = ' ';
    std::string s = "The following are multiple choice questions (with answers) about " + topic + ".\n\n";
    for (int64_t i = 0; i < shots; ++i) {
        const MmluQuestion& ex = subject.dev[(size_t)i];
        s += question_text(ex) + " " + kLetters[ex.answer] + "\n\n";
    }
    return s + question_text(q);
}

}  // namespace lota::eval
