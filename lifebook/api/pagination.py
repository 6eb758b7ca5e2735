"""Every list is paginated (its own module: DRF imports it while loading its generic views)."""

from rest_framework import pagination


class Pages(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
