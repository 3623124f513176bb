"""Pages for a user's API tokens and a team's audit log (owners). Same rules as the API (projects.api.tokens)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .access import role_in, teams_for
from .audit import audit_events_for_team
from .models import Role
from .tokens import api_token_create, api_token_revoke, api_tokens_for

AUDIT_PAGE_ROWS = 200


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    """List the user's tokens; POST creates one and shows its key this once."""
    new_key = None
    if request.method == "POST":
        token, new_key = api_token_create(user=request.user, name=request.POST.get("name", ""))
        messages.success(request, f"Created {token.name}. Copy the key now: it is not shown again.")
    return render(request, "projects/token_list.html", {"tokens": api_tokens_for(request.user), "new_key": new_key})


@login_required
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(api_tokens_for(request.user), pk=pk)  # someone else's token: 404
    api_token_revoke(token=token, user=request.user)
    messages.success(request, f"Revoked {token.name}.")
    return redirect("projects:tokens")


@login_required
def team_audit(request, team_id: int):
    team = get_object_or_404(teams_for(request.user), pk=team_id)
    if role_in(request.user, team) != Role.OWNER:
        raise PermissionDenied("Only the team's owners read its audit log.")
    events = audit_events_for_team(team)[:AUDIT_PAGE_ROWS]
    return render(request, "projects/team_audit.html", {"team": team, "events": events, "limit": AUDIT_PAGE_ROWS})
