"""Random template programs rendered by Python Jinja2 as transformers configures it.

Each program mixes statements (if/elif/else, for with filters, loop variables, break/continue,
set, namespace attributes, macros, raise_exception) and expressions (operators, filters, tests,
methods, slices) with random whitespace control, over one fixed context. Writes random.json:
{context (JSON text), cases: [{name, template, rendered | error, raised}]}.

    python3 random_programs.py SEED COUNT > random.json
"""
import copy
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from features import env, Raised  # noqa: E402

R = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
N = int(sys.argv[2]) if len(sys.argv) > 2 else 500

CTX = {
    "messages": [{"role": "system", "content": " Be brief.\n"}, {"role": "user", "content": "Hi ünï 'q' \"d\""},
                 {"role": "assistant", "content": "<think>x</think>\n\nHello!", "tool_calls": [{"id": "call_123456789", "type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [1.5, None]}}}]},
                 {"role": "tool", "content": "{\"r\": 2}", "tool_call_id": "call_123456789"}, {"role": "user", "content": ""}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
    "n": 3, "f": 2.5, "s": "  a,b  c\n", "l": [3, 1, 2], "d": {"z": 1, "a": [1, 2], "m": {"k": "v"}}, "e": [], "t": True, "no": None,
    "add_generation_prompt": True, "m": {"role": "user", "content": "ctx m"}, "x": "X", "bos_token": "<s>", "eos_token": "</s>",
}

ATOMS = ["messages", "m", "x", "n", "f", "s", "l", "d", "e", "t", "no", "tools", "undefined_name",
         "1", "0", "-1", "2.5", "'a'", "''", "'x,y'", "\"q\\n\"", "none", "true", "false", "[1, 'b']", "{'k': 2, 'a': 1}", "(1, 2)",
         "messages[0]", "messages[-1]", "m.role", "m.content", "m['content']", "d.z", "d.m.k", "d['a'][1]", "x.missing",
         "messages[1:]", "l[::-1]", "s[1:3]", "ns.v", "bos_token", "eos_token", "m.tool_calls"]
FILTERS = ["length", "trim", "upper", "lower", "tojson", "tojson(indent=2)", "string", "list", "first", "last", "items",
           "join(',')", "default('D')", "default('D', true)", "reverse", "sort", "unique", "sum", "min", "max", "int", "float",
           "abs", "round", "capitalize", "title", "replace('a', 'b')", "indent(2)", "indent(2, true)", "map(attribute='role')",
           "selectattr('role', 'equalto', 'user')", "rejectattr('role', 'eq', 'user')", "select('odd')", "reject('none')",
           "map('upper')", "safe", "count", "batch(2)", "dictsort", "wordcount", "center(9)", "e"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence",
         "boolean", "true", "false", "odd", "even", "divisibleby 2", "equalto 1", "in [1, 2]", "lower", "upper", "callable"]
METHODS = ["strip()", "lstrip()", "rstrip()", "strip('a ')", "split()", "split(',')", "split(',', 1)", "startswith('a')",
           "endswith(('c', '\\n'))", "replace(',', ';')", "upper()", "lower()", "title()", "items()", "keys()", "values()",
           "get('z')", "get('q', 5)", "format(1)", "count('a')", "find('b')", "index(1)", "lstrip('\\n ')", "splitlines()"]
BIN = ["+", "-", "*", "//", "%", "/", "~", "==", "!=", "<", ">=", "in", "not in", "and", "or", "**"]

def expr(depth=0):
    r = R.random()
    if depth > 1 or r < 0.35:
        return R.choice(ATOMS)
    if r < 0.45:
        return f"({expr(depth+1)} | {R.choice(FILTERS)})"
    if r < 0.55:
        neg = R.choice(["", "not "])
        return f"({expr(depth+1)} is {neg}{R.choice(TESTS)})"
    if r < 0.65:
        return f"({expr(depth+1)}).{R.choice(METHODS)}"
    if r < 0.85:
        return f"({expr(depth+1)} {R.choice(BIN)} {expr(depth+1)})"
    if r < 0.9:
        return f"not {expr(depth+1)}"
    if r < 0.95:
        return f"({expr(depth+1)} if {expr(depth+1)} else {expr(depth+1)})"
    return f"[{expr(depth+1)}, {expr(depth+1)}][{R.choice(['0', '-1', '1:', ':1'])}]"

def ws():
    return R.choice(["", "", " ", "\n", "  \n    ", "\n\n", "\t"])

def tag(body, kind="%"):
    l = R.choice(["", "", "-", "+"]) if kind == "%" else R.choice(["", "-"])
    r = R.choice(["", "", "-", "+"]) if kind == "%" else R.choice(["", "-"])
    o, c = ("{%", "%}") if kind == "%" else ("{{", "}}")
    return f"{ws()}{o}{l} {body} {r}{c}{ws()}"

def stmts(depth=0):
    out = []
    for _ in range(R.randint(1, 2)):
        r = R.random()
        if depth > 2 or r < 0.35:
            out.append(tag(expr(), "{") + R.choice(["", "|", "text\n"]))
        elif r < 0.5:
            body = tag(f"if {expr()}") + stmts(depth+1)
            if R.random() < 0.4:
                body += tag(f"elif {expr()}") + stmts(depth+1)
            if R.random() < 0.5:
                body += tag("else") + stmts(depth+1)
            out.append(body + tag("endif"))
        elif r < 0.7:
            target = R.choice(["m", "x", "k, v"])
            it = R.choice(["messages", "l", "d | items", "d", "s", "e", "tools", "messages[1:]", "range(3)", "undefined_name", "n"])
            cond = f" if {expr()}" if R.random() < 0.25 else ""
            body = stmts(depth+1)
            extra = R.choice(["", "{{ loop.index }}/{{ loop.last }}", "{{ loop.previtem is defined }}", tag("break"), tag("continue")])
            els = tag("else") + stmts(depth+1) if R.random() < 0.3 else ""
            out.append(tag(f"for {target} in {it}{cond}") + body + extra + els + tag("endfor"))
        elif r < 0.8:
            out.append(tag(f"set x = {expr()}") + tag("x", "{"))
        elif r < 0.88:
            out.append(tag(f"set ns.v = {expr()}"))
        elif r < 0.94:
            out.append(tag("macro mac(a, b='B')") + "[{{ a }}{{ b }}]" + stmts(depth+1) + tag("endmacro") + tag(f"mac({expr()})", "{") + tag(f"mac(1, b={expr()})", "{"))
        else:
            out.append(tag(f"if {expr()}") + tag(f"raise_exception('bad ' ~ {expr()})", "{") + tag("endif"))
    return "".join(out)

cases = []
for i in range(N):
    t = "{%- set ns = namespace(v=0) -%}" + stmts()
    case = {"name": f"random_{i}", "template": t}
    try:
        case["rendered"] = env.from_string(t).render(**copy.deepcopy(CTX))  # filters may mutate
    except Raised as e:
        case["error"], case["raised"] = str(e), True
    except Exception as e:
        case["error"], case["raised"] = f"{type(e).__name__}: {e}", False
    cases.append(case)
cases = [c for c in cases if " at 0x" not in c.get("rendered", "") + c.get("error", "")]
json.dump({"context": json.dumps(CTX, ensure_ascii=False), "cases": cases}, sys.stdout, ensure_ascii=False, indent=0)
sys.stdout.write("\n")
