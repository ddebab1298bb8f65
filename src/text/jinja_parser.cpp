// Jinja parser: recursive descent over jinja_lex tokens with jinja2's operator precedence
// (condexpr < or < and < not < compare < +- < ~ < * / // % < ** < unary < postfix/filters).
// Tags: if/elif/else, for (tuple targets, `if` filter, else), set (incl. namespace attributes and
// block set), macro, break/continue, filter blocks, transformers' generation block. Any other
// tag is rejected as unsupported with its line.
#include <set>

#include "text/jinja_ast.h"
#include "text/jinja_lexer.h"
#include "util/check.h"

namespace lota::text::jinja {
namespace {

ExprPtr make(ExprType type, int line) {
    auto e = std::make_unique<Expr>();
    e->type = type;
    e->line = line;
    return e;
}

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

    // Statements until one of `ends` opens a tag; *end receives it (tag name consumed).
    Body parse_body(const std::set<std::string>& ends, std::string* end) {
        Body body;
        while (true) {
            const Token& tk = cur();
            if (tk.type == TokType::END) {
                if (!ends.empty()) fail_at(tk.line, "unexpected end of template: missing {% " + *ends.begin() + " %}");
                return body;
            }
            if (tk.type == TokType::TEXT) {
                auto s = std::make_unique<Stmt>();
                s->type = StmtType::TEXT;
                s->line = tk.line;
                s->text = tk.text;
                body.push_back(std::move(s));
                ++p_;
            } else if (tk.type == TokType::VAR_BEGIN) {
                ++p_;
                auto s = std::make_unique<Stmt>();
                s->type = StmtType::OUTPUT;
                s->line = tk.line;
                s->expr = parse_tuple(true);
                if (cur().type != TokType::VAR_END) unexpected("'}}'");
                ++p_;
                body.push_back(std::move(s));
            } else if (tk.type == TokType::BLOCK_BEGIN) {
                ++p_;
                if (cur().type == TokType::NAME && ends.count(cur().text)) {
                    *end = t_[p_++].text;
                    return body;
                }
                body.push_back(parse_statement());
            } else {
                unexpected("text or a tag");
            }
        }
    }

    StmtPtr parse_statement() {
        int line = cur().line;
        std::string tag = expect_name();
        auto s = std::make_unique<Stmt>();
        s->line = line;
        if (tag == "if") return parse_if(std::move(s));
        if (tag == "for") return parse_for(std::move(s));
        if (tag == "set") return parse_set(std::move(s));
        if (tag == "macro") return parse_macro(std::move(s));
        if (tag == "break" || tag == "continue") {
            s->type = tag == "break" ? StmtType::BREAK : StmtType::CONTINUE;
            expect_block_end();
            return s;
        }
        if (tag == "generation") {  // transformers' AssistantTracker: renders its body in place
            s->type = StmtType::BLOCK;
            expect_block_end();
            s->bodies.push_back(parse_until("endgeneration"));
            return s;
        }
        if (tag == "filter") {
            s->type = StmtType::FILTER;
            s->expr = parse_filter(make(ExprType::CONST, line));
            expect_block_end();
            s->bodies.push_back(parse_until("endfilter"));
            return s;
        }
        fail_at(line, "unsupported tag '" + tag + "'");
    }

    Body parse_until(const char* end_tag) {
        std::string end;
        Body b = parse_body({end_tag}, &end);
        expect_block_end();
        return b;
    }

    StmtPtr parse_if(StmtPtr s) {
        s->type = StmtType::IF;
        while (true) {
            s->conds.push_back(parse_tuple(false));
            expect_block_end();
            std::string end;
            s->bodies.push_back(parse_body({"elif", "else", "endif"}, &end));
            if (end == "elif") continue;
            if (end == "else") {
                expect_block_end();
                s->else_body = parse_until("endif");
            } else {
                expect_block_end();
            }
            return s;
        }
    }

    StmtPtr parse_for(StmtPtr s) {
        s->type = StmtType::FOR;
        do {
            s->targets.push_back(expect_name());
        } while (skip_op(","));
        if (!skip_name("in")) unexpected("'in'");
        s->expr = parse_tuple(false);
        if (skip_name("if")) s->cond = parse_expression(true);
        if (is_name("recursive")) fail_at(cur().line, "unsupported: recursive for loops");
        expect_block_end();
        std::string end;
        s->bodies.push_back(parse_body({"endfor", "else"}, &end));
        expect_block_end();
        if (end == "else") s->else_body = parse_until("endfor");
        return s;
    }

    StmtPtr parse_set(StmtPtr s) {
        int line = cur().line;
        std::string name = expect_name();
        if (skip_op(".")) {  // namespace attribute
            auto t = make(ExprType::GETATTR, line);
            auto base = make(ExprType::NAME, line);
            base->name = name;
            t->children.push_back(std::move(base));
            t->name = expect_name();
            s->target = std::move(t);
        } else if (is_op(",")) {
            auto t = make(ExprType::TUPLE, line);
            std::vector<std::string> names{name};
            while (skip_op(",")) names.push_back(expect_name());
            for (auto& n : names) {
                auto e = make(ExprType::NAME, line);
                e->name = n;
                t->children.push_back(std::move(e));
            }
            s->target = std::move(t);
        } else {
            s->target = make(ExprType::NAME, line);
            s->target->name = name;
        }
        if (skip_op("=")) {
            s->type = StmtType::SET;
            s->expr = parse_tuple(true);
            expect_block_end();
            return s;
        }
        if (s->target->type != ExprType::NAME) fail_at(line, "unsupported: block set of a non-name target");
        if (is_op("|")) fail_at(line, "unsupported: filtered block set");
        s->type = StmtType::SET_BLOCK;
        s->targets.push_back(name);
        expect_block_end();
        s->bodies.push_back(parse_until("endset"));
        return s;
    }

    StmtPtr parse_macro(StmtPtr s) {
        s->type = StmtType::MACRO;
        s->text = expect_name();
        expect_op("(");
        while (!skip_op(")")) {
            if (!s->params.empty()) expect_op(",");
            std::string pname = expect_name();
            ExprPtr def;
            if (skip_op("=")) def = parse_expression(true);
            s->params.emplace_back(pname, std::move(def));
        }
        expect_block_end();
        s->bodies.push_back(parse_until("endmacro"));
        return s;
    }

    // ---- expressions ----
    ExprPtr parse_tuple(bool with_condexpr) {
        int line = cur().line;
        ExprPtr first = parse_expression(with_condexpr);
        if (!is_op(",")) return first;
        auto t = make(ExprType::TUPLE, line);
        t->children.push_back(std::move(first));
        while (skip_op(",")) {
            if (cur().type == TokType::VAR_END || cur().type == TokType::BLOCK_END || is_op(")")) break;
            t->children.push_back(parse_expression(with_condexpr));
        }
        return t;
    }

    ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

    ExprPtr parse_condexpr() {
        ExprPtr e = parse_or();
        while (is_name("if")) {
            int line = cur().line;
            ++p_;
            auto c = make(ExprType::CONDITION, line);
            c->children.push_back(parse_or());
            c->children.push_back(std::move(e));
            c->children.push_back(skip_name("else") ? parse_condexpr() : nullptr);
            e = std::move(c);
        }
        return e;
    }

    ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
        auto b = make(ExprType::BINARY, line);
        b->name = op;
        b->children.push_back(std::move(l));
        b->children.push_back(std::move(r));
        return b;
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (is_name("or")) {
            int line = t_[p_++].line;
            e = binary("or", std::move(e), parse_and(), line);
        }
        return e;
    }

    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (is_name("and")) {
            int line = t_[p_++].line;
            e = binary("and", std::move(e), parse_not(), line);
        }
        return e;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            auto u = make(ExprType::UNARY, t_[p_++].line);
            u->name = "not";
            u->children.push_back(parse_not());
            return u;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        int line = cur().line;
        ExprPtr first = parse_math1();
        ExprPtr c;
        while (true) {
            std::string op;
            if (cur().type == TokType::OP && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                              cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
                op = t_[p_++].text;
            } else if (skip_name("in")) {
                op = "in";
            } else if (is_name("not") && peek().type == TokType::NAME && peek().text == "in") {
                p_ += 2;
                op = "notin";
            } else {
                break;
            }
            if (!c) {
                c = make(ExprType::COMPARE, line);
                c->children.push_back(std::move(first));
            }
            c->ops.push_back(op);
            c->children.push_back(parse_math1());
        }
        return c ? std::move(c) : std::move(first);
    }

    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token& tk = t_[p_++];
            e = binary(tk.text, std::move(e), parse_concat(), tk.line);
        }
        return e;
    }

    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (is_op("~")) {
            int line = t_[p_++].line;
            e = binary("~", std::move(e), parse_math2(), line);
        }
        return e;
    }

    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token& tk = t_[p_++];
            e = binary(tk.text, std::move(e), parse_pow(), tk.line);
        }
        return e;
    }

    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        while (is_op("**")) {
            int line = t_[p_++].line;
            e = binary("**", std::move(e), parse_unary(true), line);
        }
        return e;
    }

    ExprPtr parse_unary(bool with_filter) {
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            const Token& tk = t_[p_++];
            e = make(ExprType::UNARY, tk.line);
            e->name = tk.text;
            e->children.push_back(parse_unary(false));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        return with_filter ? parse_filter_expr(std::move(e)) : std::move(e);
    }

    ExprPtr parse_primary() {
        const Token& tk = cur();
        int line = tk.line;
        if (tk.type == TokType::NAME) {
            ++p_;
            auto e = make(ExprType::CONST, line);
            if (tk.text == "true" || tk.text == "True") {
                e->value = Value::boolean(true);
            } else if (tk.text == "false" || tk.text == "False") {
                e->value = Value::boolean(false);
            } else if (tk.text == "none" || tk.text == "None") {
                e->value = Value::none();
            } else {
                e->type = ExprType::NAME;
                e->name = tk.text;
            }
            return e;
        }
        if (tk.type == TokType::STRING) {
            std::string s;
            while (cur().type == TokType::STRING) s += t_[p_++].text;  // adjacent literals concatenate
            auto e = make(ExprType::CONST, line);
            e->value = Value::string(s);
            return e;
        }
        if (tk.type == TokType::INT || tk.type == TokType::FLOAT) {
            ++p_;
            auto e = make(ExprType::CONST, line);
            e->value = tk.type == TokType::INT ? Value::integer(tk.i) : Value::number(tk.f);
            return e;
        }
        if (skip_op("(")) {
            if (skip_op(")")) return make(ExprType::TUPLE, line);
            ExprPtr first = parse_expression(true);
            if (skip_op(")")) return first;
            auto t = make(ExprType::TUPLE, line);
            t->children.push_back(std::move(first));
            while (!skip_op(")")) {
                expect_op(",");
                if (skip_op(")")) break;
                t->children.push_back(parse_expression(true));
            }
            return t;
        }
        if (skip_op("[")) {
            auto l = make(ExprType::LIST, line);
            while (!skip_op("]")) {
                if (!l->children.empty()) expect_op(",");
                if (skip_op("]")) break;
                l->children.push_back(parse_expression(true));
            }
            return l;
        }
        if (skip_op("{")) {
            auto d = make(ExprType::DICT, line);
            while (!skip_op("}")) {
                if (!d->children.empty()) expect_op(",");
                if (skip_op("}")) break;
                d->children.push_back(parse_expression(true));
                expect_op(":");
                d->children.push_back(parse_expression(true));
            }
            return d;
        }
        unexpected("an expression");
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            int line = cur().line;
            if (skip_op(".")) {
                if (cur().type == TokType::INT) {
                    auto g = make(ExprType::GETITEM, line);
                    g->children.push_back(std::move(e));
                    auto k = make(ExprType::CONST, line);
                    k->value = Value::integer(t_[p_++].i);
                    g->children.push_back(std::move(k));
                    e = std::move(g);
                    continue;
                }
                auto g = make(ExprType::GETATTR, line);
                g->name = expect_name();
                g->children.push_back(std::move(e));
                e = std::move(g);
            } else if (skip_op("[")) {
                auto g = make(ExprType::GETITEM, line);
                g->children.push_back(std::move(e));
                g->children.push_back(parse_subscript());
                expect_op("]");
                e = std::move(g);
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript() {
        int line = cur().line;
        ExprPtr start;
        if (!is_op(":")) {
            start = parse_expression(true);
            if (!is_op(":")) return start;
        }
        auto s = make(ExprType::SLICE, line);
        s->children.push_back(std::move(start));
        expect_op(":");
        s->children.push_back(is_op("]") || is_op(":") ? nullptr : parse_expression(true));
        ExprPtr step;
        if (skip_op(":") && !is_op("]")) step = parse_expression(true);
        s->children.push_back(std::move(step));
        return s;
    }

    // Call arguments into e->children (after any existing ones) and e->kwargs.
    void parse_args(Expr& e) {
        expect_op("(");
        bool first = true;
        while (!skip_op(")")) {
            if (!first) expect_op(",");
            first = false;
            if (skip_op(")")) break;
            if (is_op("*") || is_op("**")) fail_at(cur().line, "unsupported: *args/**kwargs in calls");
            if (cur().type == TokType::NAME && peek().type == TokType::OP && peek().text == "=") {
                std::string k = t_[p_].text;
                p_ += 2;
                e.kwargs.emplace_back(k, parse_expression(true));
            } else {
                if (!e.kwargs.empty()) fail_at(cur().line, "syntax error: positional argument follows keyword argument");
                e.children.push_back(parse_expression(true));
            }
        }
    }

    ExprPtr parse_call(ExprPtr fn) {
        auto c = make(ExprType::CALL, cur().line);
        c->children.push_back(std::move(fn));
        parse_args(*c);
        return c;
    }

    ExprPtr parse_filter(ExprPtr e) {
        auto f = make(ExprType::FILTER, cur().line);
        f->name = expect_name();
        while (skip_op(".")) f->name += "." + expect_name();
        f->children.push_back(std::move(e));
        if (is_op("(")) parse_args(*f);
        return f;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        while (true) {
            if (skip_op("|")) {
                e = parse_filter(std::move(e));
            } else if (is_name("is")) {
                auto t = make(ExprType::TEST, t_[p_++].line);
                t->negated = skip_name("not");
                t->name = expect_name();
                t->children.push_back(std::move(e));
                if (is_op("(")) {
                    parse_args(*t);
                } else if ((cur().type == TokType::NAME || cur().type == TokType::STRING || cur().type == TokType::INT ||
                            cur().type == TokType::FLOAT || is_op("(") || is_op("[") || is_op("{")) &&
                           !is_name("else") && !is_name("or") && !is_name("and")) {
                    if (is_name("is")) unexpected("a test argument");
                    t->children.push_back(parse_postfix(parse_primary()));
                }
                e = std::move(t);
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }
};

}  // namespace

Body jinja_parse(const std::string& source) { return Parser(jinja_lex(source)).parse_template(); }

}  // namespace lota::text::jinja
