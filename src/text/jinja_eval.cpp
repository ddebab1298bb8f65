// Jinja evaluator: statements and expression dispatch (see jinja_eval.h). Scoping follows
// jinja2: each for-loop iteration gets a fresh scope on top of the enclosing one (a `set` in a
// loop body is gone at the next iteration and after the loop; namespaces carry state out),
// `if` opens no scope, and macros see the template's top-level variables plus their arguments.
#include "text/jinja_eval.h"

#include <cstdint>
#include <unordered_map>

#include "text/jinja_limits.h"
#include "util/check.h"

namespace lota::text::jinja {
namespace {

enum class Flow { NORMAL, BREAK, CONTINUE };

class Evaluator {
  public:
    Evaluator() { scopes_.emplace_back(); }

    void define(const std::string& name, Value v) { scopes_.front()[name] = std::move(v); }

    std::string render(const Body& body) {
        std::string out;
        out_ = &out;
        exec(body);
        return out;
    }

  private:
    using Scope = std::unordered_map<std::string, Value>;
    std::vector<Scope> scopes_;
    std::string* out_ = nullptr;
    int loop_depth_ = 0;
    int call_depth_ = 0;
    int depth_ = 0;      // nested exec/eval calls (Note [template limits] in jinja_limits.h)
    int64_t steps_ = 0;  // exec/eval calls so far

    // Counts one step of evaluation; fails past kMaxEvalSteps.
    void step(int line) {
        if (++steps_ > kMaxEvalSteps)
            fail_at(line, strfmt("evaluation exceeded %lld steps", static_cast<long long>(kMaxEvalSteps)));
    }

    // One nested exec or eval: counts the step and the depth, and fails past either limit.
    class Nest {
      public:
        Nest(Evaluator& ev, int line) : ev_(ev) {
            ev.step(line);
            if (ev.depth_ >= kMaxEvalDepth)
                fail_at(line, strfmt("evaluation nested deeper than %d levels", kMaxEvalDepth));
            ++ev.depth_;
        }
        ~Nest() { --ev_.depth_; }
        Nest(const Nest&) = delete;
        Nest& operator=(const Nest&) = delete;

      private:
        Evaluator& ev_;
    };

    // Appends rendered text to the current output (the result or a block capture).
    void emit(const std::string& text, int line) {
        check_text_size(out_->size() + text.size(), line);
        *out_ += text;
    }

    Value lookup(const std::string& name) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            auto f = it->find(name);
            if (f != it->end()) return f->second;
        }
        Value g = jinja_global(name);
        return g.is_undefined() ? Value::undefined(name) : g;
    }

    Flow exec(const Body& body) {
        for (const auto& s : body) {
            Flow f = exec(*s);
            if (f != Flow::NORMAL) return f;
        }
        return Flow::NORMAL;
    }

    std::string capture(const Body& body) {
        std::string buf;
        std::string* saved = out_;
        out_ = &buf;
        exec(body);
        out_ = saved;
        return buf;
    }

    Flow exec(const Stmt& s) {
        Nest nest(*this, s.line);
        switch (s.type) {
            case StmtType::TEXT: emit(s.text, s.line); return Flow::NORMAL;
            case StmtType::OUTPUT: emit(value_str(eval(*s.expr), s.line), s.line); return Flow::NORMAL;
            case StmtType::IF:
                for (size_t i = 0; i < s.conds.size(); ++i)
                    if (eval(*s.conds[i]).truthy()) return exec(s.bodies[i]);
                return exec(s.else_body);
            case StmtType::FOR: return exec_for(s);
            case StmtType::SET: assign(*s.target, eval(*s.expr), s.line); return Flow::NORMAL;
            case StmtType::SET_BLOCK: scopes_.back()[s.targets[0]] = Value::string(capture(s.bodies[0])); return Flow::NORMAL;
            case StmtType::MACRO: scopes_.back()[s.text] = make_macro(s); return Flow::NORMAL;
            case StmtType::BREAK:
            case StmtType::CONTINUE:
                if (loop_depth_ == 0) fail_at(s.line, "'break'/'continue' outside of a loop");
                return s.type == StmtType::BREAK ? Flow::BREAK : Flow::CONTINUE;
            case StmtType::BLOCK: return exec(s.bodies[0]);
            case StmtType::FILTER: {
                Value text = Value::string(capture(s.bodies[0]));
                CallArgs args = eval_args(*s.expr, 1);
                emit(value_str(jinja_filter(s.expr->name, text, args), s.line), s.line);
                return Flow::NORMAL;
            }
        }
        return Flow::NORMAL;
    }

    void bind_targets(Scope& scope, const std::vector<std::string>& targets, const Value& item, int line) {
        if (targets.size() == 1) {
            scope[targets[0]] = item;
            return;
        }
        std::vector<Value> parts = value_iterate(item, line);
        if (parts.size() != targets.size())
            fail_at(line, strfmt("cannot unpack %zu values into %zu loop variables", parts.size(), targets.size()));
        for (size_t i = 0; i < parts.size(); ++i) scope[targets[i]] = parts[i];
    }

    Flow exec_for(const Stmt& s) {
        std::vector<Value> all = value_iterate(eval(*s.expr), s.line);
        std::vector<Value> items;
        for (auto& item : all) {
            step(s.line);
            if (s.cond) {
                scopes_.emplace_back();
                bind_targets(scopes_.back(), s.targets, item, s.line);
                bool keep = eval(*s.cond).truthy();
                scopes_.pop_back();
                if (!keep) continue;
            }
            items.push_back(std::move(item));
        }
        if (items.empty()) return exec(s.else_body);
        const int64_t n = static_cast<int64_t>(items.size());
        ++loop_depth_;
        for (int64_t i = 0; i < n; ++i) {
            step(s.line);  // an empty body takes no other step
            scopes_.emplace_back();
            bind_targets(scopes_.back(), s.targets, items[static_cast<size_t>(i)], s.line);
            scopes_.back()["loop"] = make_loop(items, i);
            Flow f = exec(s.bodies[0]);
            scopes_.pop_back();
            if (f == Flow::BREAK) break;
        }
        --loop_depth_;
        return Flow::NORMAL;
    }

    Value make_loop(const std::vector<Value>& items, int64_t i) const {
        const int64_t n = static_cast<int64_t>(items.size());
        Value loop = Value::namespace_object();
        DictData& d = loop.dict_data();
        d.set("index0", Value::integer(i));
        d.set("index", Value::integer(i + 1));
        d.set("revindex0", Value::integer(n - i - 1));
        d.set("revindex", Value::integer(n - i));
        d.set("first", Value::boolean(i == 0));
        d.set("last", Value::boolean(i == n - 1));
        d.set("length", Value::integer(n));
        d.set("depth", Value::integer(1));  // depth counts recursive loop levels only, which are unsupported
        d.set("depth0", Value::integer(0));
        d.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("previtem"));
        d.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("nextitem"));
        d.set("cycle", Value::callable("loop.cycle", [i](CallArgs& a) {
                  if (a.args.empty()) fail_at(a.line, "loop.cycle() needs at least one argument");
                  return a.args[static_cast<size_t>(i) % a.args.size()];
              }));
        return loop;
    }

    void assign(const Expr& target, const Value& v, int line) {
        if (target.type == ExprType::NAME) {
            scopes_.back()[target.name] = v;
        } else if (target.type == ExprType::GETATTR) {
            Value ns = lookup(target.children[0]->name);
            if (ns.kind() != Kind::NAMESPACE) fail_at(line, "cannot assign attribute on non-namespace object");
            if (!target.name.empty() && target.name[0] == '_')
                fail_at(line, "cannot store underscore-prefixed attribute '" + target.name + "' on a namespace");
            if (v.holds_namespace())  // keeps values acyclic: Note [value nesting] in jinja_value.cpp
                fail_at(line, "unsupported: storing a namespace (or a value holding one) in a namespace attribute");
            ns.dict_data().set(target.name, v);
        } else {
            std::vector<Value> parts = value_iterate(v, line);
            if (parts.size() != target.children.size())
                fail_at(line, strfmt("cannot unpack %zu values into %zu names", parts.size(), target.children.size()));
            for (size_t i = 0; i < parts.size(); ++i) scopes_.back()[target.children[i]->name] = parts[i];
        }
    }

    Value make_macro(const Stmt& s) {
        const Stmt* m = &s;
        return Value::callable(s.text, [this, m](CallArgs& a) {
            if (a.args.size() > m->params.size()) fail_at(a.line, "macro '" + m->text + "' takes " +
                                                                      std::to_string(m->params.size()) + " arguments");
            if (++call_depth_ > 64) fail_at(a.line, "macro recursion too deep");
            Scope local;
            for (size_t i = 0; i < m->params.size(); ++i) {
                const auto& [pname, def] = m->params[i];
                if (i < a.args.size()) {
                    local[pname] = a.args[i];
                } else {
                    local[pname] = def ? eval(*def) : Value::undefined(pname);
                }
            }
            for (const auto& kv : a.kwargs) {
                bool known = false;
                for (const auto& p : m->params) known = known || p.first == kv.first;
                if (!known) fail_at(a.line, "macro '" + m->text + "' has no argument '" + kv.first + "'");
                local[kv.first] = kv.second;
            }
            std::vector<Scope> saved;
            saved.swap(scopes_);
            scopes_.push_back(saved.front());
            scopes_.push_back(std::move(local));
            int depth = loop_depth_;
            loop_depth_ = 0;
            std::string text;
            try {
                text = capture(m->bodies[0]);
            } catch (...) {
                scopes_.swap(saved);
                throw;
            }
            loop_depth_ = depth;
            saved.front() = scopes_.front();
            scopes_.swap(saved);
            --call_depth_;
            return Value::string(text);
        });
    }

    CallArgs eval_args(const Expr& e, size_t first) {
        CallArgs a;
        a.line = e.line;
        for (size_t i = first; i < e.children.size(); ++i) a.args.push_back(eval(*e.children[i]));
        for (const auto& kv : e.kwargs) a.kwargs.emplace_back(kv.first, eval(*kv.second));
        return a;
    }

    Value eval(const Expr& e) {
        Nest nest(*this, e.line);
        switch (e.type) {
            case ExprType::CONST: return e.value;
            case ExprType::NAME: return lookup(e.name);
            case ExprType::LIST:
            case ExprType::TUPLE: {
                std::vector<Value> items;
                for (const auto& c : e.children) items.push_back(eval(*c));
                return Value::list(std::move(items), e.type == ExprType::TUPLE);
            }
            case ExprType::DICT: {
                Value d = Value::dict();
                for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
                    Value k = eval(*e.children[i]);
                    if (!k.is_string()) fail_at(e.line, "unsupported: dict literal with a non-string key");
                    d.dict_data().set(k.as_string(), eval(*e.children[i + 1]));
                }
                return d;
            }
            case ExprType::GETATTR: return jinja_getattr(eval(*e.children[0]), e.name, e.line);
            case ExprType::GETITEM: {
                Value obj = eval(*e.children[0]);
                const Expr& k = *e.children[1];
                if (k.type != ExprType::SLICE) return jinja_getitem(obj, eval(k), e.line);
                Value parts[3];
                for (int i = 0; i < 3; ++i)
                    if (k.children[static_cast<size_t>(i)]) parts[i] = eval(*k.children[static_cast<size_t>(i)]);
                return jinja_slice(obj, k.children[0] ? &parts[0] : nullptr, k.children[1] ? &parts[1] : nullptr,
                                   k.children[2] ? &parts[2] : nullptr, e.line);
            }
            case ExprType::SLICE: fail_at(e.line, "unexpected slice");
            case ExprType::CALL: {
                Value fn = eval(*e.children[0]);
                if (fn.is_undefined()) jinja_require_defined(fn, e.line);
                if (fn.kind() != Kind::CALLABLE) fail_at(e.line, "'" + fn.type_name() + "' object is not callable");
                CallArgs a = eval_args(e, 1);
                return fn.callable_data().fn(a);
            }
            case ExprType::FILTER: {
                Value v = eval(*e.children[0]);
                CallArgs a = eval_args(e, 1);
                return jinja_filter(e.name, v, a);
            }
            case ExprType::TEST: {
                Value v = eval(*e.children[0]);
                CallArgs a = eval_args(e, 1);
                return Value::boolean(jinja_test(e.name, v, a) != e.negated);
            }
            case ExprType::UNARY: return eval_unary(e);
            case ExprType::BINARY: {
                if (e.name == "and" || e.name == "or") {
                    Value l = eval(*e.children[0]);
                    if (l.truthy() == (e.name == "or")) return l;
                    return eval(*e.children[1]);
                }
                Value l = eval(*e.children[0]);
                return jinja_binary(e.name, l, eval(*e.children[1]), e.line);
            }
            case ExprType::COMPARE: {
                Value l = eval(*e.children[0]);
                for (size_t i = 0; i < e.ops.size(); ++i) {
                    Value r = eval(*e.children[i + 1]);
                    if (!jinja_compare(e.ops[i], l, r, e.line)) return Value::boolean(false);
                    l = std::move(r);
                }
                return Value::boolean(true);
            }
            case ExprType::CONDITION:
                if (eval(*e.children[0]).truthy()) return eval(*e.children[1]);
                return e.children[2] ? eval(*e.children[2]) : Value::undefined("conditional expression");
        }
        fail_at(e.line, "unsupported expression");
    }

    Value eval_unary(const Expr& e) {
        Value v = eval(*e.children[0]);
        if (e.name == "not") return Value::boolean(!v.truthy());
        jinja_require_defined(v, e.line);
        if (!v.is_number()) fail_at(e.line, "bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v.kind() == Kind::BOOL ? Value::integer(v.as_int()) : v;
        if (v.kind() == Kind::FLOAT) return Value::number(-v.as_double());
        if (v.as_int() == INT64_MIN) fail_at(e.line, "unsupported: integer result does not fit in 64 bits");
        return Value::integer(-v.as_int());
    }
};

}  // namespace

std::string jinja_render(const Body& body, const std::vector<std::pair<std::string, Value>>& vars) {
    Evaluator ev;
    for (const auto& kv : vars) ev.define(kv.first, kv.second);
    return ev.render(body);
}

}  // namespace lota::text::jinja
