"""The audit log: who created, started, cancelled, deleted, downloaded or changed roles, per team.

Services record; team owners read their team's events (page and API), staff read everything in the admin."""

from django.db.models import QuerySet

from .models import AuditAction, AuditEvent, Team


def audit_record(*, actor, action: str, target, team: Team | None = None, detail: str = "") -> AuditEvent:
    """Record one action on `target` (a model instance). The team defaults to the target's own."""
    if team is None:
        team = target if isinstance(target, Team) else getattr(target, "team", None)
        if team is None and getattr(target, "project", None) is not None:
            team = target.project.team  # a catalog job has no project, hence no team: staff read it in the admin
    authenticated = actor is not None and actor.is_authenticated
    return AuditEvent.objects.create(
        team=team, actor=actor if authenticated else None, actor_name=actor.get_username() if authenticated else "",
        action=AuditAction(action), target_type=target._meta.model_name, target_id=str(target.pk or ""),
        target_label=str(target)[:200], detail=detail[:300],
    )


def audit_events_for_team(team: Team) -> QuerySet[AuditEvent]:
    return team.audit_events.all()
