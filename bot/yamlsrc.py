"""YAML reading that remembers line numbers, so every problem can be reported as file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class MarkedDict(dict):
    """A mapping that knows where it and each of its keys start (1-based lines)."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}
        self.value_nodes: dict[Any, yaml.Node] = {}
        self.duplicate_keys: list[tuple[Any, int]] = []

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class MarkedList(list):
    line: int = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


#: libyaml's parser when PyYAML was built with it (about 5x faster: a reload parses every file).
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BASE_LOADER):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    data = MarkedDict()
    data.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "unhashable mapping key", key_node.start_mark
            ) from None
        if key in data:
            data.duplicate_keys.append((key, key_node.start_mark.line + 1))
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1
        data.value_nodes[key] = value_node
    return data


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> MarkedList:
    data = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    return data


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class YamlProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_yaml(path: Path) -> Any:
    """Parse one file into MarkedDict/MarkedList/scalars; syntax errors become YamlProblem."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem(1, f"not UTF-8 text: {exc}") from None
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in str(exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote or bracket: point at where it opened
        line = mark.line + 1 if mark is not None else 1
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise YamlProblem(line, f"YAML syntax error: {message}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"YAML error: {exc}") from None


def text_start_line(mapping: MarkedDict, key: Any) -> int:
    """The file line on which the first line of a (possibly block-scalar) string value sits."""
    node = mapping.value_nodes.get(key)
    if node is None:
        return mapping.line_of(key)
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        return node.start_mark.line + 2
    return node.start_mark.line + 1
