from django.apps import AppConfig


class LifebookConfig(AppConfig):
    name = "lifebook"
    verbose_name = "Life books"

    def ready(self):
        from django.db.models.signals import post_delete

        from . import book_cache
        from .models import MemoryImage, ReferencePhoto
        from .renditions import _delete_renditions_of

        book_cache.connect()
        from django.db.models.signals import m2m_changed

        from . import layout
        from .models import Memory

        m2m_changed.connect(layout.on_subjects_change, sender=Memory.subjects.through, dispatch_uid="layout-subjects")
        # Whichever path deletes a picture (page, API, admin, cascade), its WebP copies go with it.
        for model in (ReferencePhoto, MemoryImage):
            post_delete.connect(_delete_renditions_of, sender=model, dispatch_uid=f"renditions-{model.__name__}")
