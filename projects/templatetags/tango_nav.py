"""The top bar's user menu: `{% load tango_nav %}`, then `{% nav_memberships user as memberships %}`."""

from django import template

register = template.Library()


@register.simple_tag
def nav_memberships(user) -> list:
    """The user's memberships with their teams, by team name: one query for the menu's team list and its audit
    links (it took one for the teams, one for the memberships and one per owned team)."""
    if not user.is_authenticated:
        return []
    return list(user.memberships.select_related("team").order_by("team__name"))
