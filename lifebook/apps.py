from django.apps import AppConfig


class LifebookConfig(AppConfig):
    name = "lifebook"
    verbose_name = "Life books"
