// Jinja expression parser: jinja2's precedence (condexpr < or < and < not < compare < + - < ~ <
// * / // % < ** < unary < postfix and filters/tests), literals, calls with keyword arguments,
// subscripts and slices. Part of Parser (jinja_parser.h).
#include "text/jinja_eval.h"
#include "text/jinja_parser.h"

namespace lota::text::jinja {

ExprPtr Parser::parse_tuple(bool with_condexpr) {
    int line = cur().line;
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto t = make_expr(ExprType::TUPLE, line);
    t->children.push_back(std::move(first));
    while (skip_op(",")) {
        if (cur().type == TokType::VAR_END || cur().type == TokType::BLOCK_END || is_op(")")) break;
        t->children.push_back(parse_expression(with_condexpr));
    }
    return t;
}

ExprPtr Parser::parse_condexpr() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
        int line = cur().line;
        ++p_;
        auto c = make_expr(ExprType::CONDITION, line);
        c->children.push_back(parse_or());
        c->children.push_back(std::move(e));
        Nest nest(*this);  // `a if b else c if d else ...` recurses here
        c->children.push_back(skip_name("else") ? parse_condexpr() : nullptr);
        e = std::move(c);
    }
    return e;
}

ExprPtr Parser::parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
        int line = t_[p_++].line;
        e = binary("or", std::move(e), parse_and(), line);
    }
    return e;
}

ExprPtr Parser::parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
        int line = t_[p_++].line;
        e = binary("and", std::move(e), parse_not(), line);
    }
    return e;
}

ExprPtr Parser::parse_not() {
    if (is_name("not")) {
        Nest nest(*this);
        auto u = make_expr(ExprType::UNARY, t_[p_++].line);
        u->name = "not";
        u->children.push_back(parse_not());
        return u;
    }
    return parse_compare();
}

ExprPtr Parser::parse_compare() {
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
            c = make_expr(ExprType::COMPARE, line);
            c->children.push_back(std::move(first));
        }
        c->ops.push_back(op);
        c->children.push_back(parse_math1());
    }
    return c ? std::move(c) : std::move(first);
}

ExprPtr Parser::parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
        const Token& tk = t_[p_++];
        e = binary(tk.text, std::move(e), parse_concat(), tk.line);
    }
    return e;
}

ExprPtr Parser::parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
        int line = t_[p_++].line;
        e = binary("~", std::move(e), parse_math2(), line);
    }
    return e;
}

ExprPtr Parser::parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
        const Token& tk = t_[p_++];
        e = binary(tk.text, std::move(e), parse_pow(), tk.line);
    }
    return e;
}

ExprPtr Parser::parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
        int line = t_[p_++].line;
        e = binary("**", std::move(e), parse_unary(true), line);
    }
    return e;
}

ExprPtr Parser::parse_unary(bool with_filter) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
        Nest nest(*this);
        const Token& tk = t_[p_++];
        e = make_expr(ExprType::UNARY, tk.line);
        e->name = tk.text;
        e->children.push_back(parse_unary(false));
    } else {
        e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    return with_filter ? parse_filter_expr(std::move(e)) : std::move(e);
}

ExprPtr Parser::parse_primary() {
    const Token& tk = cur();
    int line = tk.line;
    if (tk.type == TokType::NAME) {
        ++p_;
        auto e = make_expr(ExprType::CONST, line);
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
        auto e = make_expr(ExprType::CONST, line);
        e->value = Value::string(s);
        return e;
    }
    if (tk.type == TokType::INT || tk.type == TokType::FLOAT) {
        ++p_;
        auto e = make_expr(ExprType::CONST, line);
        e->value = tk.type == TokType::INT ? Value::integer(tk.i) : Value::number(tk.f);
        return e;
    }
    if (is_op("(") || is_op("[") || is_op("{")) return parse_display(line);
    unexpected("an expression");
}

// A parenthesised expression or tuple, a list or a dict literal: one nesting level.
ExprPtr Parser::parse_display(int line) {
    Nest nest(*this);
    if (skip_op("(")) {
        if (skip_op(")")) return make_expr(ExprType::TUPLE, line);
        ExprPtr first = parse_expression(true);
        if (skip_op(")")) return first;
        auto t = make_expr(ExprType::TUPLE, line);
        t->children.push_back(std::move(first));
        while (!skip_op(")")) {
            expect_op(",");
            if (skip_op(")")) break;
            t->children.push_back(parse_expression(true));
        }
        return t;
    }
    if (skip_op("[")) {
        auto l = make_expr(ExprType::LIST, line);
        while (!skip_op("]")) {
            if (!l->children.empty()) expect_op(",");
            if (skip_op("]")) break;
            l->children.push_back(parse_expression(true));
        }
        return l;
    }
    if (skip_op("{")) {
        auto d = make_expr(ExprType::DICT, line);
        while (!skip_op("}")) {
            if (!d->children.empty()) expect_op(",");
            if (skip_op("}")) break;
            d->children.push_back(parse_expression(true));
            expect_op(":");
            d->children.push_back(parse_expression(true));
        }
        return d;
    }
    unexpected("'(', '[' or '{'");
}

ExprPtr Parser::parse_postfix(ExprPtr e) {
    while (true) {
        int line = cur().line;
        if (skip_op(".")) {
            if (cur().type == TokType::INT) {
                auto g = make_expr(ExprType::GETITEM, line);
                g->children.push_back(std::move(e));
                auto k = make_expr(ExprType::CONST, line);
                k->value = Value::integer(t_[p_++].i);
                g->children.push_back(std::move(k));
                e = std::move(g);
                continue;
            }
            auto g = make_expr(ExprType::GETATTR, line);
            g->name = expect_name();
            g->children.push_back(std::move(e));
            e = std::move(g);
        } else if (skip_op("[")) {
            auto g = make_expr(ExprType::GETITEM, line);
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

ExprPtr Parser::parse_subscript() {
    Nest nest(*this);
    int line = cur().line;
    ExprPtr start;
    if (!is_op(":")) {
        start = parse_expression(true);
        if (!is_op(":")) return start;
    }
    auto s = make_expr(ExprType::SLICE, line);
    s->children.push_back(std::move(start));
    expect_op(":");
    s->children.push_back(is_op("]") || is_op(":") ? nullptr : parse_expression(true));
    ExprPtr step;
    if (skip_op(":") && !is_op("]")) step = parse_expression(true);
    s->children.push_back(std::move(step));
    return s;
}

// Call arguments into e->children (after any existing ones) and e->kwargs.
void Parser::parse_args(Expr& e) {
    Nest nest(*this);
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

ExprPtr Parser::parse_filter(ExprPtr e) {
    auto f = make_expr(ExprType::FILTER, cur().line);
    f->name = expect_name();
    while (skip_op(".")) f->name += "." + expect_name();
    if (!jinja_filter_known(f->name)) fail_at(f->line, "unknown filter '" + f->name + "'");  // as jinja2's compiler
    f->children.push_back(std::move(e));
    if (is_op("(")) parse_args(*f);
    return f;
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
    while (true) {
        if (skip_op("|")) {
            e = parse_filter(std::move(e));
        } else if (is_name("is")) {
            auto t = make_expr(ExprType::TEST, t_[p_++].line);
            t->negated = skip_name("not");
            t->name = expect_name();
            if (!jinja_test_known(t->name)) fail_at(t->line, "unknown test '" + t->name + "'");
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
}  // namespace lota::text::jinja
