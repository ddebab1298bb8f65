// Resource limits of the Jinja interpreter (text/jinja_limits.h): hostile templates fail with a
// lota::Error naming the limit instead of overflowing the stack, allocating without bound or
// running forever; templates just inside the limits still render.
#include <gtest/gtest.h>

#include <string>

#include "text/chat_template.h"
#include "text/jinja_limits.h"
#include "util/check.h"

namespace {

using lota::text::ChatTemplateOptions;
using json = nlohmann::ordered_json;

std::string render(const std::string& tmpl, const json& messages = json::array()) {
    return lota::text::chat_template_render(tmpl, messages, ChatTemplateOptions{});
}

// The lota::Error message of rendering `tmpl`; fails the test when it renders.
std::string render_error(const std::string& tmpl, const json& messages = json::array()) {
    try {
        std::string out = render(tmpl, messages);
        ADD_FAILURE() << "no error; rendered " << out.size() << " bytes";
    } catch (const lota::Error& e) {
        return e.what();
    }
    return "";
}

std::string repeat(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(jinja_limits, DeepParenthesesFail) {
    const std::string tmpl = "{{ " + repeat("(", 6000) + "1" + repeat(")", 6000) + " }}";
    EXPECT_HAS(render_error(tmpl), "chat template: template nested deeper than 200 levels at line 1");
}

TEST(jinja_limits, DeepIfBlocksFail) {
    const std::string tmpl = repeat("{% if true %}", 11000) + "x" + repeat("{% endif %}", 11000);
    EXPECT_HAS(render_error(tmpl), "template nested deeper than 200 levels");
}

TEST(jinja_limits, DeepUnaryAndCallsFail) {
    EXPECT_HAS(render_error("{{ " + repeat("-", 5000) + "1 }}"), "nested deeper than 200 levels");
    EXPECT_HAS(render_error("{{ " + repeat("not ", 5000) + "1 }}"), "nested deeper than 200 levels");
    EXPECT_HAS(render_error("{{ " + repeat("range(", 5000) + "1" + repeat(")", 5000) + " }}"),
               "nested deeper than 200 levels");
    EXPECT_HAS(render_error("{{ x" + repeat("[x", 5000) + repeat("]", 5000) + " }}"), "nested deeper than 200 levels");
}

TEST(jinja_limits, NestingInsideTheLimitsRenders) {
    EXPECT_EQ(render("{{ " + repeat("(", 150) + "7" + repeat(")", 150) + " }}"), "7");
    EXPECT_EQ(render(repeat("{% if true %}", 150) + "x" + repeat("{% endif %}", 150)), "x");
}

TEST(jinja_limits, LongOperatorChainFailsAtEvaluation) {
    // A chain is parsed by a loop, not recursion, but evaluates one level per operator.
    std::string tmpl = "{{ 1";
    for (int i = 0; i < 100000; ++i) tmpl += " ~ 1";
    tmpl += " }}";
    EXPECT_HAS(render_error(tmpl), "evaluation nested deeper than 500 levels");
    std::string ok = "{{ 0";
    for (int i = 0; i < 300; ++i) ok += " + 1";
    EXPECT_EQ(render(ok + " }}"), "300");
}

TEST(jinja_limits, StringRepetitionIsCheckedBeforeAllocating) {
    EXPECT_HAS(render_error("{{ ('x' * 1000000) * 1000000 }}"), "exceeds the 64 MiB limit at line 1");
    EXPECT_HAS(render_error("{{ 'x' * 2000000 }}"), "repetition count too large");
    EXPECT_HAS(render_error("{{ [1, 2] * 1000000 }}"), "exceeds the 1000000-item limit");
}

TEST(jinja_limits, GrowingStringsFail) {
    // Doubling by concatenation, replace and join each stop at the string limit.
    EXPECT_HAS(render_error("{% set ns = namespace(s='x' * 1000000) %}{% for i in range(10) %}"
                            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
               "exceeds the 64 MiB limit");
    EXPECT_HAS(render_error("{{ ('x' * 100000).replace('x', 'y' * 1000) }}"), "exceeds the 64 MiB limit");
    EXPECT_HAS(render_error("{{ ('x' * 1000000 * 60).split('x')|length }}"), "exceeds the 1000000-item limit");
    EXPECT_HAS(render_error("{{ ('a\n' * 100000)|indent(1000) }}"), "exceeds the 64 MiB limit");
    EXPECT_HAS(render_error("{{ [1, 2]|tojson(indent='x' * 1000000 * 40) }}"), "exceeds the 64 MiB limit");
}

TEST(jinja_limits, OutputIsCapped) {
    EXPECT_HAS(render_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"), "exceeds the 64 MiB limit");
}

TEST(jinja_limits, ValueNestingIsCapped) {
    EXPECT_HAS(render_error("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}"
                            "{% endfor %}{{ ns.x }}"),
               "values nested deeper than 600 levels");
    // Input JSON deeper than the limit (only a caller bypassing the JSON reader can build one).
    json deep = json::array();
    for (int i = 0; i < 700; ++i) deep = json::array({deep});
    const json messages = json::array({json{{"role", "user"}, {"content", deep}}});
    EXPECT_HAS(render_error("{{ messages }}", messages), "values nested deeper than 600 levels");
}

TEST(jinja_limits, NamespaceCannotHoldANamespace) {
    // ns.self = ns would make a cycle: printing it would never end, and it would leak.
    EXPECT_HAS(render_error("{% set ns = namespace() %}{% set ns.self = ns %}"),
               "unsupported: storing a namespace (or a value holding one) in a namespace attribute");
    EXPECT_HAS(render_error("{% set ns = namespace() %}{% set ns.l = [1, [ns]] %}"), "storing a namespace");
    EXPECT_EQ(render("{% set a = namespace(v=1) %}{% set b = namespace(inner=a) %}{% set a.v = 2 %}{{ b.inner.v }}"),
              "2");
}

TEST(jinja_limits, IntegerPowerOfZeroOrOneIsImmediate) {
    // |x| <= 1 never overflows, so a multiply-until-overflow loop would run 2^63 times.
    EXPECT_EQ(render("{{ 1 ** 9223372036854775807 }} {{ (-1) ** 9223372036854775807 }} {{ (-1) ** 4 }} "
                     "{{ 0 ** 9223372036854775807 }} {{ 0 ** 0 }}"),
              "1 -1 1 0 1");
}

TEST(jinja_limits, IntegerEdgesAreDefined) {
    // Each is undefined behaviour (signed overflow, float-to-int cast) or a std::out_of_range
    // unless checked; they must compute exactly or fail with a lota::Error.
    const char* const overflows[] = {"{{ -(-9223372036854775807 - 1) }}", "{{ (-9223372036854775807 - 1)|abs }}",
                                      "{{ 1e300|int }}", "{{ '1e300'|int }}", "{{ '%d' % 1e300 }}"};
    for (const char* t : overflows) EXPECT_HAS(render_error(t), "integer result does not fit in 64 bits");
    EXPECT_EQ(render("{{ 'abc'[1::9223372036854775807] }}"), "b");
    EXPECT_EQ(render("{{ range(9223372036854775806, 9223372036854775807, 9223372036854775807)|list }}"),
              "[9223372036854775806]");
    EXPECT_HAS(render_error("{{ '{99999999999999999999}'.format(1) }}"), "format: replacement index out of range");
    EXPECT_EQ(render("{{ [[7]]|map(attribute='99999999999999999999')|map('default', 0)|list }}"), "[0]");
}

TEST(jinja_limits, EndlessLoopsStop) {
    EXPECT_HAS(render_error("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"),
               "evaluation exceeded 10000000 steps");
}

}  // namespace
