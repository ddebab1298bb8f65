// MMLU result formatting (see mmlu_report.h).
#include "eval/mmlu_report.h"

#include "util/strfmt.h"

namespace lota::eval {
namespace {

nlohmann::json score_json(const MmluScore& s) {
    return {{"name", s.name}, {"n", s.n}, {"correct", s.correct}, {"acc", s.acc()}};
}

const char* category_title(const std::string& c) {
    if (c == "humanities") return "Hums.";
    if (c == "stem") return "STEM";
    if (c == "social_sciences") return "Social";
    return "Other";
}

}  // namespace

nlohmann::json mmlu_result_json(const MmluResult& r) {
    nlohmann::json subjects = nlohmann::json::array(), categories = nlohmann::json::array();
    for (size_t i = 0; i < r.subjects.size(); ++i) {
        nlohmann::json s = score_json(r.subjects[i]);
        s["category"] = r.subject_categories[i];
        subjects.push_back(s);
    }
    for (const MmluScore& c : r.categories) categories.push_back(score_json(c));
    nlohmann::json answers = nlohmann::json::array();
    for (const MmluAnswer& a : r.answers)
        answers.push_back({{"subject", a.subject}, {"index", a.index}, {"answer", std::string(1, char('A' + a.answer))},
                           {"predicted", std::string(1, char('A' + a.predicted))}, {"loglik", a.loglik},
                           {"tokens", a.tokens}, {"truncated", a.truncated}});
    return {{"subjects", subjects},          {"categories", categories},
            {"average", r.all.acc()},        {"n", r.all.n},
            {"correct", r.all.correct},      {"category_mean", r.category_mean},
            {"truncated", r.truncated},      {"max_len", r.max_len},
            {"seconds", r.seconds},          {"questions", answers}};
}

std::string mmlu_result_table(const MmluResult& r) {
    std::string s = strfmt("%-40s %-16s %6s %7s\n", "subject", "category", "n", "acc %");
    for (size_t i = 0; i < r.subjects.size(); ++i)
        s += strfmt("%-40s %-16s %6lld %7.2f\n", r.subjects[i].name.c_str(), r.subject_categories[i].c_str(),
                    (long long)r.subjects[i].n, 100.0 * r.subjects[i].acc());
    s += "\n";
    std::string head, row;
    for (const MmluScore& c : r.categories) {
        head += strfmt("%8s", category_title(c.name));
        row += c.n > 0 ? strfmt("%8.2f", 100.0 * c.acc()) : strfmt("%8s", "-");
    }
    s += head + strfmt("%8s\n", "Avg.") + row + strfmt("%8.2f\n", 100.0 * r.all.acc());
    s += strfmt("%lld questions in %.1fs; Avg. over all questions (lm-eval); mean of the categories %.2f",
                (long long)r.all.n, r.seconds, 100.0 * r.category_mean);
    if (r.truncated > 0)
        s += strfmt("; %lld prompts cut from the left to %lld tokens", (long long)r.truncated, (long long)r.max_len);
    return s;
}

}  // namespace lota::eval
