from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500


def paginated_response(view, queryset, serializer_class, *, ordering: tuple[str, ...] = ("-id",)):
    """A cursor-paginated answer of ``queryset`` in ``ordering`` (which must end with a
    unique field), serialized by ``serializer_class``."""
    paginator = CursorPagination()
    paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
