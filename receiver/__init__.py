"""alert-receiver: a Prometheus Alertmanager webhook receiver with timed escalation.

Importing the package has no side effects; `receiver.app.create_app` and `receiver.cli` build things.
"""

__version__ = "0.1.0"
