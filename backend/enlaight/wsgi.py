"""WSGI entry point (gunicorn enlaight.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enlaight.settings")

application = get_wsgi_application()
