"""The API's page-number pagination, without a COUNT query for a first page that holds every row.

A list's answer carries the total (`count`). Django's paginator counts before it fetches; when the first page comes
back with fewer rows than a page holds, those rows are all there is, so their number is the total. Polls such as
`/api/jobs/?status=running` (a handful of rows) then cost one query less. Other pages count as before.
"""

from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination


class FirstPageCountingPaginator(Paginator):
    def page(self, number):
        if str(number) != "1" or self.orphans or not self.allow_empty_first_page or "count" in self.__dict__:
            return super().page(number)
        rows = list(self.object_list[: self.per_page])
        if len(rows) < self.per_page:
            self.__dict__["count"] = len(rows)  # Paginator.count is a cached_property
        return self._get_page(rows, 1, self)


class TangoPageNumberPagination(PageNumberPagination):
    django_paginator_class = FirstPageCountingPaginator
