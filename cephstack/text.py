"""Names from a cluster as text a person reads: a pool, user or image name is data that
librados lets hold any character, ESC included (issue 18). Pure, base layer: every view may
use it (status, report, fence)."""

from __future__ import annotations


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(name: object) -> str:
    """`name` safe to print to a terminal and to put in XML: every character Python calls
    not printable (control characters such as ESC, NUL, DEL and the C1 range, line and
    paragraph separators, format characters such as a right-to-left override, surrogates)
    shown as a backslash escape, and a backslash itself doubled so the escapes stay
    unambiguous. Letters of any script are kept. Plain names come back unchanged."""
    text = "" if name is None else str(name)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join("\\\\" if ch == "\\" else ch if ch.isprintable() else _escape(ch)
                   for ch in text)


def printable_lines(text: object) -> str:
    """printable() of each line, the line breaks kept: a message of several lines (an
    error and its hint) that quotes names."""
    return "\n".join(printable(line) for line in str(text).split("\n"))
