"""INI fragments as data (so rendering and merging share one source), and their text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    key: str
    value: str
    why: str = ""  # a one-line comment written above the option


@dataclass(frozen=True)
class Section:
    name: str
    options: tuple[Option, ...]


def ini_text(sections: list[Section], header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for section in sections:
        lines += ["", f"[{section.name}]"]
        for option in section.options:
            if option.why:
                lines.append(f"# {option.why}")
            lines.append(f"{option.key} = {option.value}")
    return "\n".join(lines) + "\n"


def merged_sections(*groups: list[Section]) -> list[Section]:
    """Concatenate fragments, joining sections of the same name in order."""
    out: dict[str, list[Option]] = {}
    for group in groups:
        for section in group:
            out.setdefault(section.name, []).extend(section.options)
    return [Section(name, tuple(options)) for name, options in out.items()]
