"""Every template and label, scanned for what a Chinese reader should never see: half-width
brackets next to Chinese text, English enum words (day/night/none, agent/supervisor/admin) and
YAML keys of the scripts knowledge base outside <code>, a stray space before a full-width bracket."""

import re
from pathlib import Path

import yaml

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
#: Data files beside the templates (demo team, demo orders): codes there are data, not words.
DATA_FILES = {"sandbox/demo.yaml", "reminders/demo_orders.yaml"}
CJK = r"[\u3400-\u9fff\u3000-\u303f\uff01-\uff5e]"
ENUM = re.compile(r"(?<![\w=./-])(day|night|none|agent|supervisor|admin)(?![\w=])")
YAML_KEYS = re.compile(r"\b(phrasings|keywords|example_values|situations|placeholders|policy_keys)\b")


def visible(text: str) -> str:
    """Text as a reader meets it: Jinja comments, statements and expressions, <code> and tags removed."""
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}", "\x00", text, flags=re.S)
    text = re.sub(r"\{%.*?%\}", "", text, flags=re.S)
    text = re.sub(r"<code>.*?</code>", "\x00", text, flags=re.S)
    return re.sub(r"<[^>]+>", "", text)


def strings(value, where):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}[{index}]")
    elif isinstance(value, str):
        yield where, value


def all_texts():
    for path in sorted(TEMPLATES.rglob("*")):
        name = path.relative_to(TEMPLATES).as_posix()
        if path.suffix in (".html", ".txt", ".j2"):  # .j2: the order import's messages and names
            yield name, path.read_text(encoding="utf-8")
        elif path.suffix == ".yaml" and name not in DATA_FILES:
            yield from strings(yaml.safe_load(path.read_text(encoding="utf-8")), name)


def problems(name: str, text: str) -> list[str]:
    shown = visible(text)
    found = []
    for match in re.finditer(rf"{CJK}\s*[()]|[()]\s*{CJK}", shown):
        found.append(f"{name}: half-width bracket beside Chinese: {shown[max(0, match.start() - 12):match.end() + 12]!r}")
    for match in ENUM.finditer(shown):
        found.append(f"{name}: English enum word {match[1]!r}: {shown[max(0, match.start() - 12):match.end() + 12]!r}")
    for match in YAML_KEYS.finditer(shown):
        found.append(f"{name}: YAML key {match[1]!r} shown to people")
    for match in re.finditer(r"\S[ \u3000]+（", shown):
        found.append(f"{name}: space before a full-width bracket: {shown[max(0, match.start() - 12):match.end() + 4]!r}")
    return found


def test_templates_and_labels_read_as_chinese():
    found = [problem for name, text in all_texts() for problem in problems(name, text)]
    assert found == [], "\n".join(found)


def test_the_scan_catches_each_kind_of_slip():
    assert problems("x", "退货(7天)")
    assert problems("x", "可选：day|night|none")
    assert problems("x", "请补充到 phrasings 里")
    assert problems("x", "小美 （白班）")
    assert problems("x", "可选 agent、admin")
    assert not problems("x", "退货（7 天）<code>/setshift 小美 day</code>{{ f(x) }}")


#: Wordings the first-day trial tripped over (issue 16), fixed once: none may come back.
RETIRED = {
    "交班时交给下一班": "an item waits for the next shift: 等下一班接手",
    "详情会发到你的私聊": "the digest is read in the private chat too: 认领后会单独发一张订单详情给你",
    "及以上权限": "nothing is above admin: 需要管理员权限",
    "day|night|none": "shifts are offered in Chinese",
    "agent|supervisor|admin": "roles are offered in Chinese",
}


def test_retired_wordings_stay_gone():
    found = [f"{name}: {phrase!r} ({why})" for name, text in all_texts() for phrase, why in RETIRED.items()
             if phrase in text]
    assert found == [], "\n".join(found)
