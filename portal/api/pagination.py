"""Pagination shared by every API list."""

from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200 a page)."""

    page_size_query_param = "page_size"
    max_page_size = 200
