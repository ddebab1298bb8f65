// Answer rules of the generation tasks (eval/task_scoring.h) on hand-written cases: what counts
// as right and, as importantly, what must count as wrong.
#include <gtest/gtest.h>

#include "eval/task_scoring.h"

namespace {

using lota::eval::gsm8k_answer;
using lota::eval::gsm8k_correct;
using lota::eval::sql_correct;
using lota::eval::viggo_correct;
using lota::eval::viggo_parse;

TEST(eval_task_scoring, gsm8k_final_answer) {
    EXPECT_EQ(*gsm8k_answer("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18"), "18");
    EXPECT_EQ(*gsm8k_answer("#### 1,234,567"), "1234567");
    EXPECT_EQ(*gsm8k_answer("a #### 5\nb #### 7 "), "7");  // the last "####" counts
    EXPECT_EQ(*gsm8k_answer("####-3"), "-3");
    EXPECT_EQ(*gsm8k_answer("#### a, b"), "a, b");  // only commas between digits are dropped
    EXPECT_FALSE(gsm8k_answer("The answer is 18.").has_value());
}

TEST(eval_task_scoring, gsm8k_rules) {
    const std::string ref = "Work.\n#### 1000";
    EXPECT_TRUE(gsm8k_correct("So she pays 1,000 dollars.\n#### 1,000", ref));
    EXPECT_TRUE(gsm8k_correct("#### 1000  \n", ref));
    EXPECT_FALSE(gsm8k_correct("#### 100", ref));
    EXPECT_FALSE(gsm8k_correct("The answer is 1000", ref)) << "no #### is wrong, even with the right number";
    EXPECT_FALSE(gsm8k_correct("1000", ref));
    // negatives
    EXPECT_TRUE(gsm8k_correct("#### -12", "#### -12"));
    EXPECT_FALSE(gsm8k_correct("#### 12", "#### -12"));
    // decimals: compared as text after normalisation
    EXPECT_TRUE(gsm8k_correct("#### 2.5", "#### 2.5"));
    EXPECT_TRUE(gsm8k_correct("#### 1,234.5", "#### 1234.5"));
    EXPECT_FALSE(gsm8k_correct("#### 2.50", "#### 2.5"));
    EXPECT_FALSE(gsm8k_correct("#### 18.0", "#### 18"));
    EXPECT_FALSE(gsm8k_correct("#### 2.5", "no marker")) << "a reference without #### matches nothing";
}

TEST(eval_task_scoring, sql_exact_match) {
    const std::string ref = "SELECT route_via FROM table_29202276_2 WHERE train_name = 'Parasuram Express'";
    EXPECT_TRUE(sql_correct(ref, ref));
    EXPECT_TRUE(sql_correct("  " + ref + "\n", ref)) << "surrounding whitespace is stripped (official strip())";
    EXPECT_FALSE(sql_correct("SELECT  route_via FROM table_29202276_2 WHERE train_name = 'Parasuram Express'", ref))
        << "a doubled space inside counts as wrong";
    EXPECT_FALSE(sql_correct("SELECT route_via\nFROM table_29202276_2 WHERE train_name = 'Parasuram Express'", ref));
    EXPECT_FALSE(sql_correct("select route_via FROM table_29202276_2 WHERE train_name = 'Parasuram Express'", ref));
}

TEST(eval_task_scoring, viggo_parse_values_with_commas_and_parentheses) {
    const auto mr = viggo_parse(
        " inform(name[Tom Clancy's The Division], esrb[M (for Mature)], genres[role-playing, shooter], rating[]) ");
    ASSERT_TRUE(mr.has_value());
    EXPECT_EQ(mr->function, "inform");
    ASSERT_EQ(mr->attributes.size(), 4u);
    EXPECT_EQ(mr->attributes[1], std::make_pair(std::string("esrb"), std::string("M (for Mature)")));
    EXPECT_EQ(mr->attributes[2], std::make_pair(std::string("genres"), std::string("role-playing, shooter")));
    EXPECT_EQ(mr->attributes[3].second, "");
    for (const char* bad : {"inform", "inform(name[x]", "inform(name[x]) trailing", "(name[x])", "inform(name)",
                            "inform(name[x], )", "inform(name[x]])", "inform(name[[x])"})
        EXPECT_FALSE(viggo_parse(bad).has_value()) << bad;
}

TEST(eval_task_scoring, viggo_rules) {
    const std::string ref = "verify_attribute(name[Little Big Adventure], rating[average], has_multiplayer[no], "
                            "platforms[PlayStation])";
    EXPECT_TRUE(viggo_correct(ref, ref));
    EXPECT_TRUE(viggo_correct("verify_attribute(platforms[PlayStation], has_multiplayer[no], name[Little Big "
                              "Adventure], rating[average])",
                              ref))
        << "attributes reordered";
    EXPECT_TRUE(viggo_correct("verify_attribute( name[Little Big Adventure],rating[average] , has_multiplayer[no], "
                              "platforms[PlayStation] )",
                              ref))
        << "whitespace around items";
    EXPECT_FALSE(viggo_correct("inform(name[Little Big Adventure], rating[average], has_multiplayer[no], "
                               "platforms[PlayStation])",
                               ref))
        << "different function";
    EXPECT_FALSE(viggo_correct("verify_attribute(name[Little Big Adventure], rating[poor], has_multiplayer[no], "
                               "platforms[PlayStation])",
                               ref))
        << "same attribute names, different value";
    EXPECT_FALSE(viggo_correct("verify_attribute(name[Little Big Adventure], rating[average], has_multiplayer[no])",
                               ref))
        << "an attribute missing";
    EXPECT_FALSE(viggo_correct("verify_attribute(name[Little Big Adventure], rating[average], has_multiplayer[no], "
                               "platforms[PlayStation], platforms[PlayStation])",
                               ref))
        << "an attribute repeated";
    EXPECT_FALSE(viggo_correct("verify_attribute(name[Little Big Adventure], rating[average]", ref)) << "malformed";
}

}  // namespace
