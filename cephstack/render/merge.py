"""Merge cephstack's options into an existing INI file, changing nothing else: every other
line, comment and blank stays byte for byte."""

from __future__ import annotations

import re

from cephstack.render.ini import Section

_HEADER = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")


def _option_key(line: str) -> str | None:
    if line.lstrip().startswith(("#", ";")) or "=" not in line:
        return None
    return line.split("=", 1)[0].strip()


def merge_ini(text: str, sections: list[Section]) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for section in sections:
        for option in section.options:
            lines = _set(lines, section.name, option.key, option.value)
    return "".join(lines)


def _set(lines: list[str], section: str, key: str, value: str) -> list[str]:
    wanted = f"{key} = {value}\n"
    current, last_option, header_at = None, None, None
    for i, line in enumerate(lines):
        if m := _HEADER.match(line):
            current = m.group("name").strip()
            if current == section and header_at is None:
                header_at = last_option = i
            continue
        if current != section:
            continue
        if _option_key(line) == key:
            old = line.split("=", 1)[1].strip()
            if old != value:  # keep the line when only spacing differs
                lines[i] = wanted
            return lines
        if line.strip() and not line.lstrip().startswith(("#", ";")):
            last_option = i
    if header_at is None:  # a new section at the end
        tail = [] if not lines or lines[-1].strip() == "" else ["\n"]
        return lines + tail + [f"[{section}]\n", wanted]
    assert last_option is not None
    return lines[:last_option + 1] + [wanted] + lines[last_option + 1:]
