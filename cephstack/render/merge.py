"""Merge cephstack's options into an existing INI file, changing nothing else: every other
line, comment, blank, byte and line ending stays as it was.

Lines are read the way oslo.config (the services' parser) reads them: a section header
starts at column 0, `[name]`, and names other than DEFAULT compare case-insensitively; an
option starts at column 0 and splits at the first '=' or ':'; an indented line continues
the previous value. Duplicated sections and keys are all kept in step (oslo.config merges
sections, and the last value of a key wins).
"""

from __future__ import annotations

from dataclasses import dataclass

from cephstack.render.ini import Option, Section


def group_name(name: str) -> str:
    """How oslo.config names a section's group."""
    return name if name == "DEFAULT" else name.lower()


def _header(line: str) -> str | None:
    text = line.rstrip()
    if text.startswith("[") and text.endswith("]") and len(text) > 2:
        return text[1:-1]
    return None


def option_key(line: str) -> str | None:
    """The key an option line sets (oslo.config's split), or None for other lines."""
    if not line.strip() or line[0] in " \t#;[":
        return None
    colon, equal = line.find(":"), line.find("=")
    if colon < 0 and equal < 0:
        return None
    cut = equal if colon < 0 or (0 <= equal < colon) else colon
    return line[:cut].strip()


def option_value(line: str) -> str:
    colon, equal = line.find(":"), line.find("=")
    cut = equal if colon < 0 or (0 <= equal < colon) else colon
    value = line[cut + 1:].strip()
    if value and value[0] == value[-1] and value[0] in "\"'" and len(value) > 1:
        value = value[1:-1]
    return value


@dataclass
class IniLines:
    """An INI file as its lines (each with its own ending), for in-place edits."""

    lines: list[str]
    newline: str = "\n"

    @classmethod
    def parse(cls, text: str) -> IniLines:
        lines = text.splitlines(keepends=True)
        newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        return cls(lines, newline)

    def text(self) -> str:
        return "".join(self.lines)

    def sections(self) -> list[tuple[str, int]]:
        """(section name as written, line index of its header), in order."""
        return [(name, i) for i, line in enumerate(self.lines)
                if (name := _header(line)) is not None]

    def occurrences(self, section: str, key: str) -> list[int]:
        """Line indexes of `key` in every section oslo.config reads as `section`."""
        found, current = [], None
        for i, line in enumerate(self.lines):
            if (name := _header(line)) is not None:
                current = group_name(name)
            elif current == group_name(section) and option_key(line) == key:
                found.append(i)
        return found

    def value(self, section: str, key: str) -> str | None:
        """The value oslo.config reads (the last occurrence wins)."""
        found = self.occurrences(section, key)
        return option_value(self.lines[found[-1]]) if found else None

    def section_options(self, section: str) -> dict[str, str]:
        out, current = {}, None
        for line in self.lines:
            if (name := _header(line)) is not None:
                current = group_name(name)
            elif current == group_name(section) and (key := option_key(line)):
                out[key] = option_value(line)
        return out

    def set(self, section: str, key: str, value: str) -> None:
        """Give every occurrence of `key` the value; add it when there is none."""
        wanted = f"{key} = {value}{self.newline}"
        found = self.occurrences(section, key)
        for i in reversed(found):
            if option_value(self.lines[i]) != value:  # spacing alone is no change
                end = i + 1
                while end < len(self.lines) and self.lines[end][:1] in (" ", "\t") \
                        and self.lines[end].strip():
                    end += 1  # an indented continuation belongs to the old value
                self.lines[i:end] = [wanted]
        if not found:
            self._insert(section, wanted)

    def comment_out(self, section: str, key: str, why: str) -> None:
        for i in self.occurrences(section, key):
            self.lines[i] = f"# {self.lines[i].rstrip()}   # {why}{self.newline}"

    def _insert(self, section: str, line: str) -> None:
        headers = [i for name, i in self.sections() if group_name(name) == group_name(section)]
        if not headers:  # a new section at the end, after a blank line
            tail = [] if not self.lines or not self.lines[-1].strip() else [self.newline]
            self.lines += [*tail, f"[{section}]{self.newline}", line]
            return
        at = last = headers[-1]
        for i in range(at + 1, len(self.lines)):
            if _header(self.lines[i]) is not None:
                break
            if self.lines[i].strip() and not self.lines[i].lstrip().startswith(("#", ";")):
                last = i
        self.lines.insert(last + 1, line)

    def apply(self, option: Option, section: str) -> None:
        current = self.value(section, option.key)
        if option.merge == "absent" and current:
            return
        value = option.value
        if option.merge == "list" and current:
            items = [v.strip() for v in current.split(",") if v.strip()]
            value = ",".join(items + [v for v in option.value.split(",") if v not in items])
        self.set(section, option.key, value)


def misnamed_sections(ini: IniLines, sections: list[Section]) -> list[str]:
    """Headers such as `[ libvirt ]` that a reader may take for [libvirt], but that
    oslo.config reads as another group: their options do not reach the service."""
    ours = {group_name(s.name) for s in sections}
    return [f"[{name}] is not [{name.strip()}] for oslo.config (spaces in the brackets): its "
            "options are ignored; cephstack writes a proper section"
            for name, _ in ini.sections()
            if group_name(name) not in ours and group_name(name.strip()) in ours]


def merge_ini(text: str, sections: list[Section]) -> str:
    ini = IniLines.parse(text)
    for section in sections:
        for option in section.options:
            ini.apply(option, section.name)
    return ini.text()
