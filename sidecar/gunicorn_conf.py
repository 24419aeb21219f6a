"""gunicorn settings Forewarn is served with: `gunicorn -c python:sidecar.gunicorn_conf`.

`forewarn serve` applies the same settings, so a gunicorn started by hand writes the same
access log: the path escaped (a `%0a` cannot forge a line) and never the query.
"""

from sidecar.cli import access_log

# https://docs.gunicorn.org/en/stable/settings.html: a config module's top-level names are
# the settings of the same name.
worker_class = "gthread"
accesslog = "-"
access_log_format = access_log.FORMAT
logger_class = access_log.EscapedAccessLog

SETTINGS = {
    "worker_class": worker_class,
    "accesslog": accesslog,
    "access_log_format": access_log_format,
    "logger_class": logger_class,
}
"""The settings above by name, as `forewarn serve` sets them."""
