"""The device catalog's page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .selectors import device_catalog


@login_required
def device_list(request):
    # The catalog is shared by all teams, so any signed-in user may read it; only staff edit it (in the admin).
    return render(request, "recommender/device_list.html", {"devices": device_catalog()})
