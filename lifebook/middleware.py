from django.conf import settings
from django.template.response import TemplateResponse


class RequestSizeLimitMiddleware:
    """Refuse an oversized request before Django reads it, with a page that says why.

    Django's own DATA_UPLOAD_MAX_MEMORY_SIZE leaves file parts out, so a batch
    of photos is capped here; each file is capped again in lifebook.uploads.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.LIFEBOOK_MAX_REQUEST_BYTES
        if length > limit:
            response = TemplateResponse(
                request,
                "errors/too_large.html",
                {"limit_mb": limit // (1024 * 1024)},
                status=413,
            )
            return response.render()
        return self.get_response(request)
