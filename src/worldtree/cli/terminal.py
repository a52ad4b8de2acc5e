"""Step output made safe for the user's terminal: colours stay, every other control sequence goes.

A step's output is not trusted. Escape sequences in it can write the user's clipboard (OSC 52),
plant links (OSC 8), set the window title, clear the screen, move the cursor over earlier lines
or talk to the terminal itself (DCS). Only SGR (``ESC [ ... m``: colours, bold) is kept, as CI
log viewers do. The store keeps the raw bytes; ``worldtree logs --raw`` prints them unchanged.
"""

from __future__ import annotations

import re

# Order matters: string sequences (OSC, DCS, SOS, PM, APC) run to their terminator — BEL or ST
# (ESC \ or U+009C) — or, cut off by the line split, to the end of the text.
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c|(?=\x1b)|$)"
_CSI = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
_ESCAPE = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"  # two-character (and nF) escapes: ESC c resets the terminal
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # other C0/C1 controls; tab and newline stay
_SEQUENCE = re.compile(f"(?P<string>{_STRING})|(?P<csi>{_CSI})|{_ESCAPE}|{_CONTROL}")
_SGR = re.compile(r"(?:\x1b\[|\x9b)[0-9;:]*m")


_NEEDS_WORK = re.compile(_CONTROL)


def sanitize(text: str) -> str:
    """``text`` with every control sequence but SGR colours removed."""
    if not _NEEDS_WORK.search(text):  # the common case: plain text, one scan
        return text
    return _SEQUENCE.sub(_keep_sgr, text)


def _keep_sgr(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.group("csi") and _SGR.fullmatch(text):
        return text if text.startswith("\x1b") else "\x1b[" + text[1:]  # 8-bit CSI as 7-bit
    return ""
