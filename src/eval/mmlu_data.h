// MMLU data and prompts, torch-free: the subject CSVs, the subject -> category table and the
// few-shot prompt of lm-eval-harness's default MMLU task (tasks/mmlu/default), which the
// LoTA-QAF paper's Table 1 was measured with:
//   "The following are multiple choice questions (with answers) about {subject}.\n\n"
//   k dev examples, each "{question}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer: {letter}\n\n"
//   then the test question in the same form, ending in "Answer:"
// (subject with "_" -> " ", question stripped, choices as written; the first k dev rows).
// Scoring with a model is in mmlu.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lota::eval {

struct MmluQuestion {
    std::string question;
    std::array<std::string, 4> choices;
    int answer = 0;  ///< 0..3 (A..D)
};

struct MmluSubject {
    std::string name;  ///< file stem, e.g. "high_school_physics"
    std::vector<MmluQuestion> dev, test;
};

/// The four categories, in the order reported: humanities, stem, social_sciences, other.
const std::vector<std::string>& mmlu_categories();
/// The category of a subject (lm-eval's table); throws for a subject not in it.
const std::string& mmlu_subject_category(const std::string& subject);

/// Reads one subject CSV: optional header "question,choice0,choice1,choice2,choice3,answer",
/// answer 0-3 or A-D (the original Hendrycks files have no header and letters). Throws naming
/// the file and row of a malformed one.
std::vector<MmluQuestion> mmlu_read_csv(const std::string& path);

/// Loads DIR/test/{s}_test.csv and, when shots > 0, DIR/dev/{s}_dev.csv for each subject: all
/// subjects found in DIR/test (sorted) when `only` is empty. The first `limit` test questions per
/// subject are kept (−1: all). Throws naming missing or short files and unknown subjects.
std::vector<MmluSubject> mmlu_load(const std::string& dir, const std::vector<std::string>& only, int64_t shots,
                                   int64_t limit);

/// The prompt for `q` with the first `shots` dev examples of `subject`, ending in "Answer:".
std::string mmlu_prompt(const MmluSubject& subject, int64_t shots, const MmluQuestion& q);

}  // namespace lota::eval
