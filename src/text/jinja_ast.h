// Syntax tree of the Jinja subset (built by jinja_parser.cpp, run by jinja_eval.cpp). One node
// struct per category with a type tag keeps the tree small and easy to walk.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja_value.h"

namespace lota::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprType {
    CONST,      ///< value
    NAME,       ///< name
    LIST,       ///< children
    TUPLE,      ///< children
    DICT,       ///< children: key, value, key, value...
    GETATTR,    ///< children[0].name
    GETITEM,    ///< children[0][children[1]]
    SLICE,      ///< children: start, stop, step (nullptr when omitted)
    CALL,       ///< children[0](children[1..], kwargs)
    FILTER,     ///< children[0] | name(children[1..], kwargs)
    TEST,       ///< children[0] is [not] name(children[1..]); negated
    UNARY,      ///< op children[0]: "-", "+", "not"
    BINARY,     ///< children[0] op children[1]: + - * / // % ** ~ and or
    COMPARE,    ///< children[0] ops[0] children[1] ops[1] children[2] ... (chained)
    CONDITION,  ///< children[1] if children[0] else children[2] (children[2] may be nullptr)
};

struct Expr {
    Expr() = default;
    /// Releases the subtree without recursion: a chain such as a ~ b ~ c ... is a tree as tall
    /// as it is long.
    ~Expr();
    Expr(const Expr&) = delete;
    Expr& operator=(const Expr&) = delete;

    ExprType type = ExprType::CONST;
    int line = 0;
    Value value;
    std::string name;  ///< variable / attribute / filter / test name, or unary/binary operator
    std::vector<ExprPtr> children;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<std::string> ops;  ///< comparison operators: == != < <= > >= in notin
    bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtType {
    TEXT,       ///< text
    OUTPUT,     ///< {{ expr }}
    IF,         ///< conds[i] → bodies[i]; else_body
    FOR,        ///< for targets in expr [if cond]: bodies[0]; else_body
    SET,        ///< set target = expr
    SET_BLOCK,  ///< set targets[0] %}bodies[0]{% endset
    MACRO,      ///< macro name(params) bodies[0]
    BREAK,
    CONTINUE,
    BLOCK,      ///< bodies[0] rendered in place (transformers' {% generation %})
    FILTER,     ///< filter block: bodies[0] rendered, then expr (a FILTER node over a placeholder)
};

struct Stmt {
    StmtType type = StmtType::TEXT;
    int line = 0;
    std::string text;
    ExprPtr expr;  ///< OUTPUT value, FOR iterable, SET value, SET target (as `target`)
    ExprPtr target;
    ExprPtr cond;  ///< FOR filter
    std::vector<std::string> targets;  ///< FOR/SET_BLOCK names
    std::vector<ExprPtr> conds;        ///< IF conditions
    std::vector<Body> bodies;
    Body else_body;
    std::vector<std::pair<std::string, ExprPtr>> params;  ///< MACRO parameters and defaults (nullptr: none)
};

/// A parsed template; throws lota::Error on syntax errors, unsupported tags and nesting deeper
/// than kMaxParseDepth (jinja_limits.h).
Body jinja_parse(const std::string& source);

}  // namespace lota::text::jinja
