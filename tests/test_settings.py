"""Settings come from the environment; production values pass `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, env_overrides, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG", "SECRET_KEY"))}
    env.update({"LIFEBOOK_VAR_DIR": str(tmp_path)}, **env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, env_overrides={
        "DEBUG": "0", "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
        "ALLOWED_HOSTS": "lifebook.example.org", "LIFEBOOK_HTTPS": "1",
    })
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_https_check_deploy_warns(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, env_overrides={"DEBUG": "0"})
    assert result.returncode != 0 and "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


def test_a_secret_key_is_generated_once_and_kept_in_var(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = _manage("shell", "--no-imports", "-c", code, tmp_path=tmp_path, env_overrides={})
    second = _manage("shell", "--no-imports", "-c", code, tmp_path=tmp_path, env_overrides={})
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) > 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_debug_is_off_unless_asked(tmp_path):
    code = "from django.conf import settings; print(settings.DEBUG, settings.DATABASES['default']['ENGINE'])"
    result = _manage("shell", "--no-imports", "-c", code, tmp_path=tmp_path, env_overrides={})
    assert result.stdout.split()[0] == "False"


def test_the_database_comes_from_database_url(tmp_path):
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    result = _manage("shell", "--no-imports", "-c", code, tmp_path=tmp_path,
                     env_overrides={"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"})
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_models_and_migrations_agree(tmp_path):
    result = _manage("makemigrations", "--check", "--dry-run", tmp_path=tmp_path, env_overrides={})
    assert result.returncode == 0, result.stdout + result.stderr  # non-zero when a migration is missing
