"""gunicorn settings for `make run` and production (`gunicorn -c scripts/gunicorn.conf.py wsgi:app`)."""
import os

# Longer than the driver's timeouts (3 s server selection, 5 s socket), so a database
# outage answers 503 instead of getting a worker killed.
timeout = 30
graceful_timeout = 20
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
