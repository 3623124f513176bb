"""Durations in the words a user reads: the training estimate before a run and the ETA while it runs say them alike."""


def about(seconds: float) -> str:
    """'about 40 s', 'about 12 min', 'about 1 h 20 min': rounded as far as an estimate deserves."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"about {round(minutes):.0f} min"
    hours, rest = divmod(round(minutes / 10) * 10, 60)
    return f"about {hours:.0f} h" + (f" {rest:.0f} min" if rest else "")
