"""The host engine: deploys the Sirius compose project on the instance (Python 3,
standard library only). Where it keeps things on the host:"""

PROJECT_DIR = "/opt/sirius"  # the Sirius compose project, checked out at the ref
STATE_DIR = "/var/lib/sirius-demo"  # reports, lock, generated overrides
BOOTSTRAP_LOG = "/var/log/sirius-bootstrap.log"  # the first boot's log
REPORT_SCHEMA = 2  # of deploy.json, bootstrap.json and the health report
