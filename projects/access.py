"""Who may see and change what. Every query for team-owned rows goes through here, scoped to the user's teams.

Outsiders get 404 (they must not learn that a row exists); members whose role cannot change a row get 403.
Catalog jobs (jobs of no project: this server measuring itself) are staff's: staff see, start and change them;
everyone else never sees them (404).
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from .jobs.models import Job
from .models import Dataset, Membership, Project, Role, Team

EDIT_ROLES = (Role.OWNER, Role.EDITOR)


def teams_for(user) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user)


def editable_teams_for(user) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user, memberships__role__in=EDIT_ROLES)


def datasets_for(user) -> QuerySet[Dataset]:
    return Dataset.objects.filter(team__in=teams_for(user))


def projects_for(user) -> QuerySet[Project]:
    return Project.objects.filter(team__in=teams_for(user)).select_related("team", "dataset", "device")


def jobs_for(user) -> QuerySet[Job]:
    """The jobs of the user's teams' projects."""
    return Job.objects.filter(project__team__in=teams_for(user))


def catalog_jobs_for(user) -> QuerySet[Job]:
    """Jobs of no project: staff's alone."""
    if not (user.is_authenticated and user.is_staff):
        return Job.objects.none()
    return Job.objects.filter(project__isnull=True)


def viewable_jobs_for(user) -> QuerySet[Job]:
    """Every job the user may see: their teams' and, for staff, the catalog's."""
    if not (user.is_authenticated and user.is_staff):
        return jobs_for(user)
    return Job.objects.filter(Q(project__team__in=teams_for(user)) | Q(project__isnull=True))


def can_change_job(user, job: Job) -> bool:
    """Cancel or retry it: a catalog job is staff's; a project's job its team's editors'."""
    if job.is_catalog:
        return user.is_authenticated and user.is_staff
    return can_edit(user, job.project.team)


def require_job_changer(user, job: Job) -> None:
    if not can_change_job(user, job):
        raise PermissionDenied("Only staff can change a catalog job." if job.is_catalog else
                               "Viewers cannot change anything in this team.")


def require_staff(user) -> None:
    """For what acts on the server itself (measuring it): staff only."""
    if not (user.is_authenticated and user.is_staff):
        raise PermissionDenied("Only staff can do this.")


def memberships_for(user) -> list[Membership]:
    """The user's memberships with their teams, by team name: what the page header lists. A page that also needs
    the user's role (role_among) or whether they edit anywhere reads it from this list, read fresh for the request
    (one query where each used to take its own), and hands the list to its template as `user_memberships`."""
    if not user.is_authenticated:
        return []
    return list(user.memberships.select_related("team").order_by("team__name"))


def role_among(memberships: list[Membership], team: Team) -> str | None:
    """The role memberships_for's list gives in `team`, as role_in would read it."""
    return next((m.role for m in memberships if m.team_id == team.pk), None)


def role_in(user, team: Team) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, team=team).values_list("role", flat=True).first()


def can_edit(user, team: Team) -> bool:
    return role_in(user, team) in EDIT_ROLES


def require_member(user, team: Team) -> str:
    role = role_in(user, team)
    if role is None:
        raise Http404("No such team.")
    return role


def require_editor(user, team: Team) -> None:
    """Raise 404 for outsiders and 403 for viewers."""
    if require_member(user, team) not in EDIT_ROLES:
        raise PermissionDenied("Viewers cannot change anything in this team.")


def require_editor_somewhere(user) -> None:
    """Creating anything (a dataset, a project) needs an editor role in some team; viewers may look around."""
    if not editable_teams_for(user).exists():
        raise PermissionDenied("You are not an editor or owner of any team.")


def project_to_change(user, pk: int) -> Project:
    """The project, when the user may change it: 404 for outsiders, 403 for viewers."""
    project = get_object_or_404(projects_for(user), pk=pk)
    require_editor(user, project.team)
    return project


def require_owner(user, team: Team) -> None:
    if require_member(user, team) != Role.OWNER:
        raise PermissionDenied("Only the team's owners can do this.")
