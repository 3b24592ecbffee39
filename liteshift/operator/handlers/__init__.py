"""kopf handlers, one module per concern; importing this package registers them all.

`kopf run -m liteshift.operator.handlers` (or `liteshift operator`) runs them. Backups and
promotion add their own modules here (`backups.py`, `promotion.py`) and import them below.
"""

from liteshift.operator.handlers import backups, datastore, runtime

__all__ = ["backups", "datastore", "runtime"]
