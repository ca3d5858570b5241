"""muslind's log lines: logrus' text format plus the ids a line is about, and levels
that keep libraries' debug chatter out."""

from __future__ import annotations

import logging

from muslin.daemon import main


def test_line_carries_time_level_component_and_ids() -> None:
    rec = logging.LogRecord("muslin.cnm", logging.DEBUG, __file__, 1, 'say "%s"', ("hi",),
                            None)
    rec.network, rec.endpoint, rec.container = "n" * 64, "e" * 64, "c" * 64
    line = main._Formatter().format(rec)
    assert line.startswith('time="') and ' level=debug msg="say \\"hi\\"" ' in line
    assert line.endswith(f" component=muslin.cnm network={'n' * 64} endpoint={'e' * 64} "
                         f"container={'c' * 64}")
    warn = logging.LogRecord("muslin", logging.WARNING, __file__, 1, "w", (), None)
    assert " level=warning " in main._Formatter().format(warn)


def test_levels() -> None:
    saved = logging.getLogger().level, logging.getLogger("muslin").level
    try:
        main.set_level("debug")
        assert logging.getLogger("muslin.x").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("pyroute2").isEnabledFor(logging.INFO)
        main.set_level("error")
        assert not logging.getLogger("muslin.x").isEnabledFor(logging.WARNING)
    finally:
        logging.getLogger().setLevel(saved[0])
        logging.getLogger("muslin").setLevel(saved[1])
