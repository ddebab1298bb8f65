// Jinja parser: recursive descent over jinja_lex tokens with jinja2's operator precedence
// (condexpr < or < and < not < compare < +- < ~ < * / // % < ** < unary < postfix/filters).
// Tags: if/elif/else, for (tuple targets, `if` filter, else), set (incl. namespace attributes and
// block set), macro, break/continue, filter blocks, transformers' generation block. Any other
// tag is rejected as unsupported with its line.
#include "text/jinja_parser.h"

namespace lota::text::jinja {

Expr::~Expr() {
    std::vector<ExprPtr> work;
    for (auto& c : children) work.push_back(std::move(c));
    for (auto& kv : kwargs) work.push_back(std::move(kv.second));
    while (!work.empty()) {
        ExprPtr e = std::move(work.back());
        work.pop_back();
        if (!e) continue;
        for (auto& c : e->children) work.push_back(std::move(c));
        for (auto& kv : e->kwargs) work.push_back(std::move(kv.second));
    }  // each `e` dies here with no children left
}

ExprPtr make_expr(ExprType type, int line) {
    auto e = std::make_unique<Expr>();
    e->type = type;
    e->line = line;
    return e;
}

// Statements until one of `ends` opens a tag; *end receives it (tag name consumed).
Body Parser::parse_body(const std::set<std::string>& ends, std::string* end) {
    Nest nest(*this);
    Body body;
    while (true) {
        const Token& tk = cur();
        if (tk.type == TokType::END) {
            if (!ends.empty()) {
                std::string names;
                for (const auto& e : ends) names += (names.empty() ? "" : ", ") + e;
                fail_at(tk.line, "unexpected end of template: unclosed block (expected one of: " + names + ")");
            }
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

StmtPtr Parser::parse_statement() {
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
        s->expr = parse_filter(make_expr(ExprType::CONST, line));
        expect_block_end();
        s->bodies.push_back(parse_until("endfilter"));
        return s;
    }
    fail_at(line, "unsupported tag '" + tag + "'");
}

StmtPtr Parser::parse_if(StmtPtr s) {
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

StmtPtr Parser::parse_for(StmtPtr s) {
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

StmtPtr Parser::parse_set(StmtPtr s) {
    int line = cur().line;
    std::string name = expect_name();
    if (skip_op(".")) {  // namespace attribute
        auto t = make_expr(ExprType::GETATTR, line);
        auto base = make_expr(ExprType::NAME, line);
        base->name = name;
        t->children.push_back(std::move(base));
        t->name = expect_name();
        s->target = std::move(t);
    } else if (is_op(",")) {
        auto t = make_expr(ExprType::TUPLE, line);
        std::vector<std::string> names{name};
        while (skip_op(",")) names.push_back(expect_name());
        for (auto& n : names) {
            auto e = make_expr(ExprType::NAME, line);
            e->name = n;
            t->children.push_back(std::move(e));
        }
        s->target = std::move(t);
    } else {
        s->target = make_expr(ExprType::NAME, line);
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

StmtPtr Parser::parse_macro(StmtPtr s) {
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

Body jinja_parse(const std::string& source) { return Parser(jinja_lex(source)).parse_template(); }

}  // namespace lota::text::jinja
