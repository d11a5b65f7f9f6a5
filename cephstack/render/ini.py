"""INI fragments as data (so rendering and merging share one source), and their text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    key: str
    value: str
    why: str = ""  # a one-line comment written above the option
    # How --merge-into treats a file that already sets it: "set" replaces the value;
    # "list" adds the comma-separated items missing (other backends stay); "absent" sets
    # it only when the file has no value (an existing default stays the default);
    # "replace" is "set" where the spec allows replacing a choice the host made (a non-Ceph
    # backup_driver, say), which merging otherwise refuses (cephstack.render.existing).
    merge: str = "set"


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


def sections_to_data(sections: list[Section]) -> list[dict]:
    """Sections as JSON data (a bundle's manifest carries them for host install)."""
    return [{"name": s.name, "options": [{"key": o.key, "value": o.value, "merge": o.merge}
                                         for o in s.options]} for s in sections]


def sections_from_data(data: list[dict]) -> list[Section]:
    return [Section(str(s["name"]), tuple(Option(str(o["key"]), str(o["value"]),
                                                 merge=str(o.get("merge", "set")))
                                          for o in s["options"])) for s in data]
