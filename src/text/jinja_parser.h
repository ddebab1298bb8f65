// Jinja parser internals shared by jinja_parser.cpp (template and statements) and
// jinja_parse_expr.cpp (expressions): a recursive-descent parser over jinja_lex tokens.
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "text/jinja_ast.h"
#include "text/jinja_lexer.h"
#include "text/jinja_limits.h"
#include "util/check.h"

namespace lota::text::jinja {

ExprPtr make_expr(ExprType type, int line);

/// Parses one template; each parse_* method consumes the construct it names.
class Parser {
  public:
    explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

    Body parse_template() {
        std::string end;
        Body body = parse_body({}, &end);
        return body;
    }

  private:
    std::vector<Token> t_;
    size_t p_ = 0;
    int depth_ = 0;  // open nesting levels (Note [template limits] in jinja_limits.h)

    // One level of nesting (a block body, bracket, unary operator, call or subscript) for the
    // lifetime of the guard; past kMaxParseDepth the template is refused before the stack runs out.
    class Nest {
      public:
        explicit Nest(Parser& parser) : parser_(parser) {
            if (parser.depth_ >= kMaxParseDepth)
                fail_at(parser.cur().line, strfmt("template nested deeper than %d levels", kMaxParseDepth));
            ++parser.depth_;
        }
        ~Nest() { --parser_.depth_; }
        Nest(const Nest&) = delete;
        Nest& operator=(const Nest&) = delete;

      private:
        Parser& parser_;
    };

    const Token& cur() const { return t_[p_]; }
    const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
    bool is_op(const char* op) const { return cur().type == TokType::OP && cur().text == op; }
    bool is_name(const char* n) const { return cur().type == TokType::NAME && cur().text == n; }
    bool skip_op(const char* op) {
        if (!is_op(op)) return false;
        ++p_;
        return true;
    }
    bool skip_name(const char* n) {
        if (!is_name(n)) return false;
        ++p_;
        return true;
    }
    [[noreturn]] void unexpected(const char* expected) const {
        std::string got = cur().type == TokType::END         ? "end of template"
                          : cur().type == TokType::BLOCK_END ? "end of tag '%}'"
                          : cur().type == TokType::VAR_END   ? "end of print '}}'"
                                                             : "'" + cur().text + "'";
        fail_at(cur().line, strfmt("syntax error: expected %s, got %s", expected, got.c_str()));
    }
    void expect_op(const char* op) {
        if (!skip_op(op)) unexpected((std::string("'") + op + "'").c_str());
    }
    std::string expect_name() {
        if (cur().type != TokType::NAME) unexpected("a name");
        return t_[p_++].text;
    }
    void expect_block_end() {
        if (cur().type != TokType::BLOCK_END) unexpected("'%}'");
        ++p_;
    }

    Body parse_body(const std::set<std::string>& ends, std::string* end);
    StmtPtr parse_statement();

    Body parse_until(const char* end_tag) {
        std::string end;
        Body b = parse_body({end_tag}, &end);
        expect_block_end();
        return b;
    }

    StmtPtr parse_if(StmtPtr s);
    StmtPtr parse_for(StmtPtr s);
    StmtPtr parse_set(StmtPtr s);
    StmtPtr parse_macro(StmtPtr s);
    ExprPtr parse_tuple(bool with_condexpr);

    ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

    ExprPtr parse_condexpr();

    ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
        auto b = make_expr(ExprType::BINARY, line);
        b->name = op;
        b->children.push_back(std::move(l));
        b->children.push_back(std::move(r));
        return b;
    }

    ExprPtr parse_or();
    ExprPtr parse_and();
    ExprPtr parse_not();
    ExprPtr parse_compare();
    ExprPtr parse_math1();
    ExprPtr parse_concat();
    ExprPtr parse_math2();
    ExprPtr parse_pow();
    ExprPtr parse_unary(bool with_filter);
    ExprPtr parse_primary();
    ExprPtr parse_display(int line);
    ExprPtr parse_postfix(ExprPtr e);
    ExprPtr parse_subscript();
    void parse_args(Expr& e);

    ExprPtr parse_call(ExprPtr fn) {
        auto c = make_expr(ExprType::CALL, cur().line);
        c->children.push_back(std::move(fn));
        parse_args(*c);
        return c;
    }

    ExprPtr parse_filter(ExprPtr e);
    ExprPtr parse_filter_expr(ExprPtr e);
};

}  // namespace lota::text::jinja
