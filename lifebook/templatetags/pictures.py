"""`{% srcset image sizes="100vw" %}`: the src, srcset and sizes attributes of a stored picture's WebP renditions."""

from django import template
from django.utils.html import format_html

from lifebook import renditions

register = template.Library()


@register.simple_tag
def srcset(image, sizes="100vw"):
    """Attributes for an <img>, from a MemoryImage (or anything with `.image` and `.width`). Empty for no image.

    The width comes from the row (no file is opened), so a page of many pictures costs no extra work.
    """
    if not image or not getattr(image, "image", None):
        return ""
    candidates = renditions.srcset_candidates(image.image.name, getattr(image, "width", None))
    # The fallback src: the largest candidate not above the middle width, or the smallest there is.
    fallback = max((c for c in candidates if c[1] <= renditions.FALLBACK_WIDTH), key=lambda c: c[1],
                   default=candidates[0])
    return format_html(
        'src="{}" srcset="{}" sizes="{}"',
        fallback[0], ", ".join(f"{url} {width}w" for url, width in candidates), sizes,
    )
