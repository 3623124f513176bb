"""The top bar's user menu: `{% load tango_nav %}`, then `{% nav_memberships user as memberships %}`."""

from django import template

from projects.access import memberships_for

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_memberships(context, user) -> list:
    """The user's memberships with their teams, by team name: one query for the menu's team list and its audit
    links (it took one for the teams, one for the memberships and one per owned team), none when the view read
    them for this request already (`user_memberships` in its context: access.memberships_for)."""
    if "user_memberships" in context:
        return context["user_memberships"]
    return memberships_for(user)
