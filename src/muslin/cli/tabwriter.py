"""Go's text/tabwriter (docker's fork), the column aligner behind docker's tables.

Owns the elastic-tabstop layout: cells end at a tab, a column block is a run of
consecutive lines that have a cell in that column, each block is as wide as its widest
cell plus `padding` (at least `minwidth`), and the last cell of a line is never padded.
Docker's tables use (minwidth 10, tabwidth 1, padding 3, ' '); `docker version` uses
(20, 1, 1, ' '). Widths count runes, East Asian wide ones as two. Pure: no I/O.
"""

from __future__ import annotations


def text_width(s: str) -> int:
    """Display width (go-runewidth's view, simplified): wide East Asian runes are 2."""
    if s.isascii():
        return len(s)
    import unicodedata

    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def tabwrite(text: str, minwidth: int = 10, padding: int = 3, padchar: str = " ") -> str:
    """Align `text` like tabwriter.NewWriter(out, minwidth, 1, padding, padchar, 0) and
    Flush (padchar is not a tab, so tabwidth plays no part)."""
    raw_lines = text.split("\n")
    # the text after the last newline is a line without a terminator
    lines = [ln.replace("\v", "\t").split("\t") for ln in raw_lines]
    widths: list[int] = []
    out: list[str] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            parts: list[str] = []
            for j, cell in enumerate(cells):
                parts.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(padchar * (widths[j] - text_width(cell)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            # a cell in this column: lines above it are done
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                w = text_width(lines[this][column]) + padding
                width = max(width, w)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)
