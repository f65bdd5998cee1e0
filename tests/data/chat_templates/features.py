"""Reference renderings of one small template per Jinja feature chat templates use.

Renders each case with Python Jinja2 configured as transformers' apply_chat_template does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loop controls, the generation tag,
its tojson, raise_exception and strftime_now on a frozen clock) and writes features.json:
[{name, template, context (a JSON text, so key order survives), rendered | error, raised}].

    python3 features.py > features.json      (Jinja2 3.1)
"""
import json
import sys
from datetime import datetime, timezone

from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Raised(TemplateError):
    pass


class Generation(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


NOW = datetime(2025, 7, 10, 12, 0, 0, tzinfo=timezone.utc)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                       "required": ["city"]}}}

CASES = [
    # statements
    ("if_elif_else", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}{% endfor %}", {}),
    ("for_else_empty", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {}),
    ("for_filtered", "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }}{{ ',' if not loop.last }}{% endfor %}", {"messages": MSGS}),
    ("for_tuple_unpacking", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("for_dict_items_filter", "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}", {"d": {"z": "1", "y": [1]}}),
    ("for_over_dict_keys", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"q": 1, "p": 2}}),
    ("for_over_string", "{% for c in 'héllo' %}[{{ c }}]{% endfor %}", {}),
    ("loop_vars", "{% for x in 'abc' %}{{ loop.index0 }}{{ loop.index }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {}),
    ("loop_prev_next", "{% for x in [1, 2, 3] %}{{ loop.previtem is defined and loop.previtem }}-{{ loop.nextitem | default('end') }};{% endfor %}", {}),
    ("loop_cycle", "{% for x in range(4) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("set_scoping_in_loop", "{% set x = 'outer' %}{% for i in [1] %}{% set x = 'inner' %}{{ x }}{% endfor %}{{ x }}", {}),
    ("set_in_if_is_visible", "{% if true %}{% set y = 3 %}{% endif %}{{ y }}", {}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}),
    ("set_block", "{% set body %}Hello {{ name }}!{% endset %}[{{ body }}]", {"name": "Ann"}),
    ("set_block_filtered", "{% set body | upper %}shout {{ name }}{% endset %}{{ body }}", {"name": "it"}),
    ("namespace_carries_state", "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}", {"messages": MSGS}),
    ("macro_defaults_kwargs", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }} {{ greet(name='C') }}", {}),
    ("macro_recursion", "{% macro render(v) %}{% if v is mapping %}{% for k, x in v.items() %}{{ k }}:{{ render(x) }} {% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(d) }}", {"d": {"a": {"b": 1}, "c": 2}}),
    ("macro_call_block", "{% macro box(title) %}[{{ title }}|{{ caller() }}]{% endmacro %}{% call box('T') %}inside {{ x }}{% endcall %}", {"x": 5}),
    ("call_block_with_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}<{{ item }}>{% endcall %}", {}),
    ("filter_block", "{% filter upper %}quiet {{ 'words' }}{% endfilter %}", {}),
    ("generation_tag", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}", {"messages": MSGS}),
    ("comments", "a{# a comment #}b{#- trimmed -#}   c", {}),
    ("raw_block", "{% raw %}{{ not evaluated }}{% endraw %}", {}),
    ("raw_block_whitespace", "a\n  {% raw %}\nX {{ y }}\n  {% endraw %}\nY{%- raw -%}\n Z \n{%- endraw -%}\n W", {}),
    ("recursive_loop", "{% for n in tree recursive %}<{{ n.name }}{% if n.kids %}:{{ loop(n.kids) }}{% endif %}>{% endfor %}", {"tree": [{"name": "a", "kids": [{"name": "b"}, {"name": "c", "kids": [{"name": "d"}]}]}, {"name": "e"}]}),
    ("for_else_after_break", "{% for x in [1, 2] %}{{ x }}{% break %}{% else %}E{% endfor %}|{% for x in [1, 2] %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% else %}E{% endfor %}", {}),
    ("generators_are_true", "{% if messages | selectattr('role', 'equalto', 'nobody') %}T{% endif %}|{{ messages | selectattr('role', 'equalto', 'nobody') | list | length }}", {"messages": MSGS}),
    ("unicode_case", "{{ s | upper }}|{{ s | lower }}|{{ s.title() }}|{{ s | capitalize }}|{{ s | title }}|{{ 'ÉTÉ' is upper }}{{ 'été' is lower }}{{ 'Été' is lower }}|{{ ['b', 'Á', 'a'] | sort }}", {"s": "élan Straße ŁÓDŹ ΑΘΗΝΑ αθήνα Привет ёж"}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}", {}),
    # whitespace control
    ("trim_blocks", "{% if true %}\nline\n{% endif %}\nafter", {}),
    ("lstrip_blocks", "start\n    {% if true %}\n    body\n    {% endif %}\nend", {}),
    ("minus_markers", "a   {%- if true -%}   b   {%- endif -%}   c\n  {{- ' d ' -}}  e", {}),
    ("plus_markers", "x\n    {%+ if true +%}\ny{% endif %}", {}),
    ("var_tags_keep_newlines", "{{ 'a' }}\n{{ 'b' }}\n", {}),
    ("trailing_newline_dropped", "text\n", {}),
    ("crlf_normalised", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("comment_lstrip_trim", "a\n  {# note #}\nb", {}),
    # expressions
    ("attribute_vs_item", "{{ m.role }} {{ m['content'] }} {{ m.missing is defined }} {{ m['missing'] is defined }}", {"m": MSGS[1]}),
    ("index_negative_slices", "{{ xs[0] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[:2] }} {{ xs[::-1] }} {{ xs[1:-1] }} {{ xs[::2] }} {{ 'héllo'[1:3] }} {{ 'abc'[-1] }}", {"xs": [1, 2, 3, 4]}),
    ("messages_slices", "{% for m in messages[1:] %}{{ m.role }};{% endfor %}{{ messages[-1].content }}", {"messages": MSGS}),
    ("inline_if", "{{ 'yes' if flag else 'no' }} [{{ 'only' if not flag }}]", {"flag": True}),
    ("arithmetic", "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 10 - 2 - 3 }} {{ -x }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }}", {"x": 4}),
    ("concat_tilde", "{{ 'n=' ~ 3 ~ none ~ true ~ [1] }}", {}),
    ("string_plus", "{{ 'a' + 'b' }} {{ [1] + [2, 3] }}", {}),
    ("comparisons", "{{ 1 < 2 }} {{ 'b' > 'a' }} {{ 2 >= 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ '' != false }} {{ none == none }} {{ [1, 2] == [1, 2] }} {{ 1 < 2 < 3 }}", {}),
    ("boolean_logic", "{{ true and 'x' }} {{ false or 'y' }} {{ not none }} {{ '' or 0 or 'z' }} {{ [] and 1 }}", {}),
    ("in_operator", "{{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 'z' not in 'abc' }} {{ 'x' in undefined_thing }}", {}),
    ("literals", "{{ [1, 'two', none, true, 2.5] }} {{ {'k': 'v', 'n': 1} }} {{ (1, 2) }} {{ (1,) }} {{ 'it''s' }} {{ \"dq\" }}", {}),
    ("string_escapes", "{{ 'a\\nb\\tc\\\\d\\'e' }}|{{ \"\\u00e9\" }}", {}),
    ("number_literals", "{{ 1_000 }} {{ 1e3 }} {{ 2.50 }} {{ 0x1F }}", {}),
    ("print_values", "{{ none }}|{{ true }}|{{ 3.0 }}|{{ 1e20 }}|{{ 1e-7 }}|{{ d }}|{{ l }}|{{ undefined_var }}|", {"d": {"a": "it's", "b": None, "c": [True, 1.5]}, "l": ["x", 'q"uote']}),
    # tests
    ("tests_types", "{{ x is string }} {{ n is number }} {{ n is integer }} {{ f is float }} {{ d is mapping }} {{ l is iterable }} {{ s is iterable }} {{ n is iterable }} {{ l is sequence }} {{ b is boolean }} {{ none is none }}", {"x": "s", "n": 3, "f": 1.5, "d": {}, "l": [], "s": "t", "b": False}),
    ("tests_defined", "{{ a is defined }} {{ a is undefined }} {{ b is defined }} {{ b is none }} {{ b is not none }} {{ not a is defined }}", {"b": None}),
    ("tests_values", "{{ false is false }} {{ 0 is false }} {{ true is true }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ 1 is sameas 1 }} {{ 'a' is equalto 'a' }} {{ 2 is in [1, 2] }}", {}),
    # filters
    ("filter_tojson", "{{ tools[0] | tojson }}|{{ 'héllo \"q\" \\n' | tojson }}|{{ [1, 2.5, none, true] | tojson }}|{{ {} | tojson }}|{{ [] | tojson }}", {"tools": [TOOL]}),
    ("filter_tojson_indent", "{{ tools[0] | tojson(indent=4) }}\n{{ {'a': [], 'b': {}, 'c': [1]} | tojson(indent=2) }}", {"tools": [TOOL]}),
    ("filter_tojson_sort_keys_separators", "{{ d | tojson(sort_keys=true) }} {{ d | tojson(separators=(',', ':')) }}", {"d": {"b": 1, "a": [1, 2]}}),
    ("filter_trim", "[{{ '  x  ' | trim }}][{{ '\\n\\tx y\\n' | trim }}][{{ 'xxhixx' | trim('x') }}]", {}),
    ("filter_length", "{{ messages | length }} {{ 'héllo' | length }} {{ {'a': 1} | length }} {{ 'abc' | count }}", {"messages": MSGS}),
    ("filter_items_list_string", "{{ d | items | list }} {{ 'abc' | list }} {{ d | string }} {{ [1, 'a'] | string }} {{ 3 | string }}", {"d": {"k": "v"}}),
    ("filter_join", "{{ ['a', 'b', 'c'] | join(', ') }} {{ [1, 2] | join }} {{ messages | join('/', attribute='role') }}", {"messages": MSGS}),
    ("filter_indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}|{{ 'a\\n\\nb' | indent(width=2, first=true, blank=true) }}|{{ 'x\\ny' | indent('> ') }}", {}),
    ("filter_selectattr_rejectattr", "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ messages | rejectattr('role', 'equalto', 'user') | list | length }} {{ messages | selectattr('tool_calls') | list }}", {"messages": MSGS + [{"role": "assistant", "tool_calls": [1]}]}),
    ("filter_select_reject", "{{ [1, 2, 3, 4] | select('odd') | list }} {{ ['a', 'b'] | reject('equalto', 'a') | list }} {{ [0, 1, '', 'x'] | select | list }}", {}),
    ("filter_map", "{{ ['a', 'b'] | map('upper') | join }} {{ messages | map(attribute='role') | first }} {{ [{'a': 1}, {}] | map(attribute='a', default=0) | list }}", {"messages": MSGS}),
    ("filter_first_last", "{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'abc' | first }} [{{ [] | first }}]", {}),
    ("filter_default", "{{ missing | default('dflt') }} {{ '' | default('empty', true) }} {{ '' | default('kept') }} {{ none | default('n') }} {{ missing | d('short') }}", {}),
    ("filter_case", "{{ 'Hello World' | upper }} {{ 'Hello World' | lower }} {{ 'hello world' | title }} {{ 'hELLO' | capitalize }}", {}),
    ("filter_replace_safe", "{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ '<b>' | safe }}", {}),
    ("filter_numbers", "{{ '42' | int }} {{ 'x' | int }} {{ 3.9 | int }} {{ '2.5' | float }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ [3, 1, 2] | sum }} {{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }}", {}),
    ("filter_sort_unique_reverse", "{{ ['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ messages | sort(attribute='role') | map(attribute='role') | list }} {{ ['a', 'A', 'b'] | unique | list }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }}", {"messages": MSGS}),
    ("filter_dictsort", "{{ {'b': 1, 'a': 2} | dictsort }}", {}),
    ("filter_misc", "{{ 'a b  c' | wordcount }} {{ [1, 2, 3] | batch(2) | list }} {{ '%s-%d' | format('x', 3) }} {{ 'x' | center(5) }}|{{ '<a>&' | e }}", {}),
    # methods
    ("methods_strip", "[{{ '  x  '.strip() }}][{{ '\\n\\nx\\n'.lstrip('\\n') }}][{{ 'x  \\n'.rstrip() }}][{{ 'xyx'.strip('x') }}][{{ '\\n x'.lstrip() }}]", {}),
    ("methods_split", "{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'x</think>y'.split('</think>')[-1] }}", {}),
    ("methods_affix_replace", "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'a.b.c'.replace('.', '/') }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }} {{ 'ab cd'.title() }} {{ '{} and {}'.format(1, 2) }}", {}),
    ("methods_dict", "{{ d.items() | list }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.get('a') }} {{ d.get('z', 'none') }} {{ d.get('z') }}", {"d": {"a": 1, "b": 2}}),
    ("string_percent_format", "{{ '%s has %d items' % ('list', 3) }} {{ '%s' % 'one' }}", {}),
    # globals
    ("raise_exception", "{% if messages[0].role != 'user' %}{{ raise_exception('First message must be from the user, got ' + messages[0].role) }}{% endif %}ok", {"messages": MSGS}),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }}", {}),
    ("range_and_dict", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ dict(a=1, b='x') | tojson }}", {}),
    # undefined semantics
    ("undefined_prints_empty", "[{{ nothing }}][{{ nothing | length }}][{% for x in nothing %}x{% endfor %}][{{ nothing is defined }}]", {}),
    ("undefined_attribute_of_missing_key", "[{{ m.nope }}][{{ m.nope is defined }}][{{ none_value.attr }}]", {"m": {"a": 1}, "none_value": None}),
    ("undefined_attribute_error", "{{ nothing.attr }}", {}),
    ("undefined_add_error", "{{ nothing + 'x' }}", {}),
    ("type_error_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("tools_none_vs_undefined", "{{ tools is none }} {{ tools is defined }} {% if tools %}T{% else %}F{% endif %} {{ documents is not none }}", {"tools": None, "documents": None}),
    # a realistic template with tools (tool calls, tool results, JSON arguments)
    ("tools_roundtrip",
     "{%- if tools %}{{- '<tools>' }}{%- for t in tools %}\n{{ t | tojson }}{%- endfor %}\n{{- '</tools>\\n' }}{%- endif %}"
     "{%- for m in messages %}{%- if m.role == 'assistant' and m.tool_calls is defined %}"
     "{%- for c in m.tool_calls %}{%- set f = c.function if c.function is defined else c %}"
     "<call>{{ f.name }}({{ f.arguments | tojson if f.arguments is not string else f.arguments }})</call>{%- endfor %}"
     "{%- elif m.role == 'tool' %}<result>{{ m.content }}</result>{%- else %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{%- endif %}\n"
     "{%- endfor %}{%- if add_generation_prompt %}<assistant>{%- endif %}",
     {"tools": [TOOL], "add_generation_prompt": True, "messages": [
         {"role": "user", "content": " Weather in Paris? "},
         {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
         {"role": "tool", "content": "{\"temp\": 21.5}"},
         {"role": "assistant", "tool_calls": [{"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}]}]}),
]


def main():
    out = []
    for name, template, context in CASES:
        case = {"name": name, "template": template, "context": json.dumps(context, ensure_ascii=False)}
        try:
            case["rendered"] = env.from_string(template).render(**context)
        except Raised as e:
            case["error"], case["raised"] = str(e), True
        except Exception as e:  # noqa: BLE001 - the golden records that the reference rejects it
            case["error"], case["raised"] = f"{type(e).__name__}: {e}", False
        out.append(case)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
