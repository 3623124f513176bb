"""projects.jobs.log._merged: how pending pushes to one job's viewers are folded into fewer messages."""

from projects.jobs.log import PUSH_MAX_LINES, _merged


def lines(*seqs):
    return {"type": "log.lines", "lines": [{"seq": s, "text": f"line {s}"} for s in seqs]}


STATE = {"type": "job.state"}


def test_consecutive_line_pushes_become_one_in_order():
    assert _merged([lines(1), lines(2, 3), lines(4)]) == [lines(1, 2, 3, 4)]


def test_a_state_change_stays_between_the_lines_around_it():
    assert _merged([lines(1), lines(2), STATE, lines(3), STATE]) == [lines(1, 2), STATE, lines(3), STATE]


def test_a_merged_push_holds_at_most_the_line_limit_before_a_new_one_starts():
    pushes = [lines(seq) for seq in range(1, PUSH_MAX_LINES + 3)]
    merged = _merged(pushes)
    assert [len(m["lines"]) for m in merged] == [PUSH_MAX_LINES, 2]
    assert [line["seq"] for m in merged for line in m["lines"]] == list(range(1, PUSH_MAX_LINES + 3))


def test_the_callers_messages_are_not_changed():
    first = lines(1)
    _merged([first, lines(2)])
    assert first == lines(1)


def test_nothing_pending_sends_nothing():
    assert _merged([]) == []
