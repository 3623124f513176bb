"""Object permissions on top of scoped querysets.

Querysets come from projects.access, so an outsider never reaches these checks (get_object answers 404);
what is left to decide is whether a member's role lets them change the row.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from projects import access
from projects.jobs.models import Job
from projects.models import Role, Team


def team_of(obj) -> Team:
    if isinstance(obj, Team):
        return obj
    if isinstance(obj, Job):
        return obj.project.team
    return obj.team


class IsEditorOrReadOnly(BasePermission):
    """Members read; editors and owners change (POST actions on a row included)."""

    message = "Viewers cannot change anything in this team."

    def has_object_permission(self, request, view, obj):
        if request.method in SAFE_METHODS:
            return True
        if isinstance(obj, Job):  # a catalog job (no project) is staff's
            return access.can_change_job(request.user, obj)
        return access.can_edit(request.user, team_of(obj))


class IsOwnerOrReadOnly(BasePermission):
    message = "Only the team's owners can do this."

    def has_object_permission(self, request, view, obj):
        return request.method in SAFE_METHODS or access.role_in(request.user, team_of(obj)) == Role.OWNER
