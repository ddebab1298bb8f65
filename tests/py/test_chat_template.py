# Reference test for `lota chat-template`: every chat template we support, rendered by the C++
# interpreter, must equal transformers' apply_chat_template(..., tokenize=False) byte for byte.
# The reference is computed here, in the same run: tokenizer directories go through
# AutoTokenizer.apply_chat_template; template strings (inline templates, SmolLM2's template
# from its GGUF) go through transformers' render_jinja_template, which apply_chat_template calls.
import json

import pytest

from lota_testlib import SHARED, lota, need_shared, smollm2_gguf

TOKENIZERS = SHARED / "tokenizers"

transformers = pytest.importorskip("transformers")
from transformers.utils.chat_template_utils import render_jinja_template  # noqa: E402

# ---------------------------------------------------------------- inputs

SYSTEM = {"role": "system", "content": "You are a helpful assistant.\nAnswer briefly."}
MESSAGES = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "with_system": [SYSTEM, {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [
        SYSTEM,
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "  Tell me a joke.\n\n"},
    ],
    "multi_turn_no_system": [
        {"role": "user", "content": "Bonjour 🙂 — ça va? \"quoted\" 'single' \\ back"},
        {"role": "assistant", "content": "Très bien, 谢谢!\n\nAnd you?  "},
        {"role": "user", "content": "Fine.\ttab"},
        {"role": "assistant", "content": "Great."},
    ],
}
GEN_PROMPT = [False, True]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city — with ünïcode.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
                },
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "now", "description": "Current time", "parameters": {}}},
]
TOOL_CHAT = [
    {"role": "system", "content": "Use tools when useful."},
    {"role": "user", "content": "Weather in Paris and Tokyo?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}},
        ],
    },
    {"role": "tool", "content": "{\"temp\": 21.5}"},
    {"role": "tool", "content": "{\"temp\": 18}"},
    {"role": "assistant", "content": "Paris 21.5°C, Tokyo 18°C."},
    {"role": "user", "content": "Thanks"},
]
THINK_CHATS = {
    "reasoning_content": [
        {"role": "user", "content": "What is 3*7?"},
        {"role": "assistant", "content": "21", "reasoning_content": "3 times 7 is 21."},
        {"role": "user", "content": "And 3*8?"},
        {"role": "assistant", "content": "24", "reasoning_content": "\nAdd 3 more.\n"},
    ],
    "think_in_content": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nGreeting.\n</think>\n\nHello!"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "<think>Farewell.</think>Goodbye!"},
    ],
    "tool_response_last": TOOL_CHAT[:5],
}

# Well-known templates, written out here: Llama-2 [INST] (raise_exception on role alternation),
# Mistral-style, Qwen2.5 with tools, and one exercising macros, namespaces, filters and loop vars.
INLINE_TEMPLATES = {
    "llama2_inst": (
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
        "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if loop.index0 == 0 and system_message != false %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}"
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
        "{% endfor %}"
    ),
    "mistral": r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
""",
    "qwen2_5": r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
""",
    "features": r"""{#- Exercises the rest of the subset: macros, namespace, filters, tests, loop variables. -#}
{%- macro render_tool(tool, idx=0) -%}
[{{ idx }}] {{ tool.function.name | upper }}: {{ tool.function.description | default('n/a') }}
{{ tool.function.parameters | tojson(indent=2) }}
{%- endmacro %}
{{- bos_token }}
{%- if not date_string is defined %}{% set date_string = strftime_now("%Y") | length %}{% endif %}
Date: {{ date_string }}
{%- set ns = namespace(users=0, last_user='', roles=[]) %}
{%- for m in messages if m.role != 'system' %}
    {%- if m.role == 'user' %}{% set ns.users = ns.users + 1 %}{% set ns.last_user = m.content %}{% endif %}
    {%- set ns.roles = ns.roles + [m.role] %}
{%- endfor %}
{%- if tools is not none %}
{% for t in tools %}
{{ render_tool(t, loop.index) }}
{% endfor %}
{%- endif %}
Users: {{ ns.users }} of {{ messages | length }}; roles {{ ns.roles | unique | list | join('/') }} {{ ns.roles }}
{%- set system = messages | selectattr('role', 'equalto', 'system') | map(attribute='content') | first %}
System: {{ system | default('none', true) | replace('\n', ' ') | trim }}
{%- for m in messages[::-1][:3] %}
{{ loop.revindex }}/{{ loop.length }} {{ loop.cycle('odd', 'even') }} {{ m.role | capitalize }}{{ ':' if loop.first else '' }} {{ m.content[:12] ~ ('...' if m.content | length > 12 else '') }}
{%- if m.tool_calls is defined %} calls={{ m.tool_calls | map(attribute='function.name') | list }}{% endif %}
{%- if loop.last %} (last){% endif %}
{%- endfor %}
{% for k, v in {'a': 1, 'b': [1, 2.5, none, true], 'c': {'d': 'x'}}.items() %}{{ k }}={{ v }}{{ ', ' if not loop.last }}{% endfor %}

{{ (7 // 2, 7 % 3, 2 ** 10, 1 / 4, -7 // 2, 10 - 3 * 2, 'x' * 3, [1, 2] + [3]) }} {{ 3 is odd }} {{ 4 is even }} {{ 'ab' in 'cabd' }}
{{ ns.last_user.split()[-1] | title }} {{ ns.last_user | wordcount }} {{ '%s=%d' | format('n', ns.users) }} {{ "{}-{}".format(1, 'two') }}
{%- if add_generation_prompt %}
<assistant>
{%- endif %}
""",
}


# ---------------------------------------------------------------- helpers


def run_lota(messages, *args):
    """`lota chat-template ARGS` with `messages` as JSON on stdin; bytes out, any exit status."""
    return lota("chat-template", *args, input=json.dumps(messages).encode(), check=False, timeout=60)


def lota_render(messages, *args):
    r = run_lota(messages, *args)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def cli_args(gen, extra):
    args = ["--add-generation-prompt"] if gen else []
    if extra:
        args += ["--extra", json.dumps(extra)]
    return args


_tokenizers = {}


def hf_tokenizer(name):
    if name not in _tokenizers:
        _tokenizers[name] = transformers.AutoTokenizer.from_pretrained(str(TOKENIZERS / name))
    return _tokenizers[name]


def ref_template(template, messages, gen, extra, bos="<s>", eos="</s>"):
    extra = dict(extra or {})
    tools = extra.pop("tools", None)
    rendered, _ = render_jinja_template(
        conversations=[messages], chat_template=template, tools=tools, add_generation_prompt=gen,
        bos_token=bos, eos_token=eos, **extra)
    return rendered[0]


def template_args(tmp_path, template, bos="<s>", eos="</s>"):
    """CLI flags rendering `template` with these special tokens (a tokenizer dir without a template)."""
    path = tmp_path / "template.jinja"
    path.write_text(template, encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": bos, "eos_token": {"content": eos}}))
    return ["--tokenizer", str(tmp_path), "--template", str(path)]


def lota_template(tmp_path, template, messages, gen, extra, bos="<s>", eos="</s>"):
    return lota_render(messages, *template_args(tmp_path, template, bos, eos), *cli_args(gen, extra))


def tokenizer_cases():
    cases = []
    for tok in ["llama3_1", "qwen3"]:
        for shape in MESSAGES:
            for gen in GEN_PROMPT:
                cases.append((tok, shape, gen, None))
    for gen in GEN_PROMPT:
        cases.append(("qwen3", "tools", gen, {"tools": TOOLS}))
        cases.append(("qwen3", "with_system", gen, {"tools": TOOLS}))
        cases.append(("qwen3", "multi_turn", gen, {"enable_thinking": False}))
        cases.append(("qwen3", "single_user", gen, {"enable_thinking": True}))
        for think in THINK_CHATS:
            cases.append(("qwen3", think, gen, None))
    return cases


def messages_for(shape):
    if shape == "tools":
        return TOOL_CHAT
    return MESSAGES.get(shape) or THINK_CHATS[shape]


# ---------------------------------------------------------------- tokenizer directories


@pytest.mark.parametrize("tok,shape,gen,extra", tokenizer_cases())
def test_tokenizer_template_matches_transformers(tok, shape, gen, extra):
    need_shared("tokenizers")
    messages = messages_for(shape)
    ref = hf_tokenizer(tok).apply_chat_template(
        messages, tokenize=False, add_generation_prompt=gen, **(extra or {}))
    got = lota_render(messages, "--tokenizer", str(TOKENIZERS / tok), *cli_args(gen, extra))
    assert got == ref.encode("utf-8"), f"lota:\n{got.decode()!r}\nref:\n{ref!r}"


def test_every_shared_template_is_covered():
    need_shared("tokenizers")
    for cfg in sorted(TOKENIZERS.glob("*/tokenizer_config.json")):
        tmpl = json.loads(cfg.read_text()).get("chat_template")
        assert tmpl is None or cfg.parent.name in ("llama3_1", "qwen3"), f"new template to test: {cfg}"


def test_tokenizer_without_template_is_an_error():
    need_shared("tokenizers")
    r = run_lota(MESSAGES["single_user"], "--tokenizer", str(TOKENIZERS / "llama2"))
    assert r.returncode != 0
    assert b"chat_template" in r.stderr


# ---------------------------------------------------------------- SmolLM2 (template from the GGUF)


@pytest.fixture(scope="module")
def smollm2_template():
    path = smollm2_gguf()
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


@pytest.mark.parametrize("shape", list(MESSAGES))
@pytest.mark.parametrize("gen", GEN_PROMPT)
def test_smollm2_template(smollm2_template, tmp_path, shape, gen):
    ref = ref_template(smollm2_template, MESSAGES[shape], gen, None, "<|im_start|>", "<|im_end|>")
    got = lota_template(tmp_path, smollm2_template, MESSAGES[shape], gen, None, "<|im_start|>", "<|im_end|>")
    assert got == ref.encode("utf-8")


# ---------------------------------------------------------------- well-known templates as strings


def inline_template(name):
    return INLINE_TEMPLATES[name]


INLINE_CASES = [(name, shape, gen, None)
                for name in ["llama2_inst", "mistral", "qwen2_5", "features"]
                for shape in MESSAGES for gen in GEN_PROMPT]
INLINE_CASES += [("qwen2_5", "tools", gen, {"tools": TOOLS}) for gen in GEN_PROMPT]
INLINE_CASES += [("features", "tools", gen, {"tools": TOOLS, "date_string": "01 Jan 2025"}) for gen in GEN_PROMPT]
INLINE_CASES += [("features", "multi_turn", True, {"tools": TOOLS})]


@pytest.mark.parametrize("name,shape,gen,extra", INLINE_CASES)
def test_inline_template(tmp_path, name, shape, gen, extra):
    template = inline_template(name)
    messages = messages_for(shape)
    try:
        ref = ref_template(template, messages, gen, extra)
    except Exception as e:  # the template rejects this conversation: lota must reject it too
        r = run_lota(messages, *template_args(tmp_path, template), *cli_args(gen, extra))
        assert r.returncode != 0 and str(e).encode() in r.stderr, r.stderr.decode()
        return
    got = lota_template(tmp_path, template, messages, gen, extra)
    assert got == ref.encode("utf-8"), f"lota:\n{got.decode()!r}\nref:\n{ref!r}"


def _write(tmp_path, template):
    path = tmp_path / "t.jinja"
    path.write_text(template, encoding="utf-8")
    return path


# ---------------------------------------------------------------- case mapping, exhaustively


def _handled_code_points():
    # What lota maps itself: ASCII, Latin-1, Latin Extended-A, basic Greek and Cyrillic letters.
    cps = [c for c in range(0x20, 0x180) if c not in (0x7F, 0x130, 0x131, 0x149, 0x17F)]
    cps += [c for c in range(0x391, 0x3CA) if c not in (0x3A2, 0x3A3) and not 0x3AA <= c <= 0x3B0]
    cps += list(range(0x400, 0x460))
    return "".join(chr(c) for c in cps)


@pytest.mark.parametrize("expr", ["s|upper", "s|lower", "s.upper()", "s.lower()", "s|title", "s.title()",
                                  "s|capitalize", "s.capitalize()", "words|title", "words.title()"])
def test_case_mapping_matches_python(tmp_path, expr):
    text = _handled_code_points()
    if "title" in expr or "capitalize" in expr:
        text = text.replace("ß", "")  # titlecasing ß gives "Ss": lota refuses it
    extra = {"s": text, "words": " ".join(text[i:i + 3] for i in range(0, len(text), 3))}
    template = "{{ " + expr + " }}"
    ref = ref_template(template, [], False, extra)
    got = lota_render([], "--template", str(_write(tmp_path, template)), "--extra", json.dumps(extra))
    assert got == ref.encode("utf-8")


def test_case_mapping_of_other_scripts_is_refused(tmp_path):
    r = run_lota([], "--template", str(_write(tmp_path, "{{ 'ǆ'|upper }}")))
    assert r.returncode != 0 and b"unsupported" in r.stderr


# ---------------------------------------------------------------- errors


def test_raise_exception_gives_template_message(tmp_path):
    template = inline_template("llama2_inst")
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(Exception, match="Conversation roles must alternate"):
        ref_template(template, bad, False, None)
    r = run_lota(bad, *template_args(tmp_path, template))
    assert r.returncode != 0
    assert b"Conversation roles must alternate user/assistant/user/assistant/..." in r.stderr
    assert r.stdout == b""


def test_unknown_filter_is_an_error(tmp_path):
    r = run_lota(MESSAGES["single_user"], "--template",
                 str(_write(tmp_path, "{{ messages[0].content | frobnicate }}")))
    assert r.returncode != 0
    assert b"frobnicate" in r.stderr and b"filter" in r.stderr
    assert r.stdout == b""


def test_unsupported_tag_is_an_error(tmp_path):
    r = run_lota(MESSAGES["single_user"], "--template",
                 str(_write(tmp_path, "a\n{% include 'other.jinja' %}")))
    assert r.returncode != 0
    assert b"unsupported" in r.stderr and b"line 2" in r.stderr


def test_bad_stdin_is_an_error(tmp_path):
    r = lota("chat-template", "--template", _write(tmp_path, "{{ 1 }}"), input=b"not json", check=False)
    assert r.returncode != 0 and b"JSON" in r.stderr
